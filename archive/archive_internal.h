// Internals of the archive module shared between its .cc files. Not part of
// the public contract (archive/archive.h).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive.h"
#include "archive/store_codec.h"
#include "core/result.h"
#include "core/fd.h"
#include "core/hash.h"
#include "core/stream.h"

namespace walferry::archive::internal {

using archive::Recompressor;  // archive/store_codec.h
using archive::ReadStored;

// Decompresses a stored zstd/gzip stream (any number of frames/members) to `sink`.
Status Decompress(int fd, const std::string& name, ByteSink& sink, std::size_t threads = 0);

// The resume manifest <transfer_id>.state (text, key=value lines, an XXH3-64
// "check" line last). ParseManifest returns nullopt for anything that is not a
// whole, intact manifest; SerializeManifest(m) parses back to m.
struct Manifest {
  std::string transfer_id, cluster, name;
  StoreFormat store = StoreFormat::kRaw;
  std::int64_t raw_size = -1;
  std::uint64_t chunks = 0, raw_offset = 0, data_length = 0;
  std::uint64_t wal_sysid = 0;
  std::uint32_t wal_seg_size = 0, wal_timeline = 0;
  std::uint64_t wal_page_address = 0;
  std::string hash_state;  // Xxh3Stream::Save()
  bool operator==(const Manifest&) const = default;
};
std::string SerializeManifest(const Manifest& m);
std::optional<Manifest> ParseManifest(std::string_view text);

// Streams the raw content of a temp data file (in the store format, written
// with pwrite only) to `sink`, from its start, then finishes the sink.
Status ReadDataPrefix(int fd, const std::string& name, StoreFormat format, ByteSink& sink);

// Size and XXH3-128 of the raw content of an opened stored file.
Result<std::pair<std::uint64_t, Hash128>> HashStored(int fd, const std::string& name,
                                                     StoreFormat format);

// Opens directory `name` under `dirfd` without following a symlink, creating it
// (mode 0700, parent fsynced, both through `fs`) when `create` is set. `shown`
// is the path for messages.
Result<UniqueFd> OpenDirAt(int dirfd, const std::string& name, const std::string& shown, bool create,
                           FileSystem& fs = PosixFs());
// For a NNNNNNNN.history `name`: reads `file` under `dirfd` (stored as
// `format`) and checks it with ParseTimelineHistory (kCorrupt); Ok for any
// other name.
Status CheckHistoryData(int dirfd, const std::string& file, StoreFormat format, std::string_view name);

// A same-name conflict at Commit: the newcomer's temp data and the stored copy.
struct Conflict {
  int cluster_fd = -1;
  std::string cluster_shown;
  int incoming_fd = -1;
  std::string data_name;  // under ROOT/.incoming
  StoreFormat data_format = StoreFormat::kRaw;
  int dest_fd = -1;
  std::string stored_file;  // under dest_fd, with its suffix
  StoreFormat stored_format = StoreFormat::kRaw;
  std::string name;
  std::uint64_t new_size = 0;
  Hash128 new_hash;
  std::uint64_t cap = kDefaultQuarantineCap;
  FileSystem* fs = &PosixFs();  // the archive's (core/fs.h): the quarantine's placements go through it
  int data_fd = -1;             // open fd of data_name (fsynced again by RenameDurable)
};
// Compares the two copies, quarantines the newcomer (moving its temp data away)
// and returns the details for the error message ("first difference at ...;
// likely cause: ...; newcomer kept in quarantine/F"). Never fails: what it
// cannot do is said in the text.
std::string HandleConflict(const Conflict& c);

}  // namespace walferry::archive::internal
