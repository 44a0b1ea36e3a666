// Receiver-side storage: name validation, WAL header checks, atomic durable
// placement and resumable incoming transfers.
//
// Layout under ROOT:
//   ROOT/<cluster>/wal/<name>[.zst|.gz]     WAL segments, .history, .backup, .partial
//   ROOT/<cluster>/files/<name>[.zst|.gz]   base backups and any other file
//   ROOT/<cluster>/system_identifier        the WAL system id this cluster first saw
//   ROOT/.incoming/<transfer_id>.data|.state  temp data and resume manifests
// A final name only ever holds a complete, verified, fsynced file.
//
// Thread-safety: an Archive may be shared between threads (connections); an
// Incoming belongs to one connection. Two Incomings for the same cluster/name
// at once: the second BeginTransfer gets kRefused ("transfer in progress").
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/store.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/result.h"
#include "core/names.h"  // ValidateClusterName
#include "walfmt/wal_header.h"
#include "core/stream.h"

namespace walferry::archive {

// The storage contract (store/store.h), under the names the archive's users
// have always used.
using store::ClassifyName;
using store::CommitOutcome;
using store::ContentCheck;
using store::EntryKind;
using store::Incoming;
using store::ParseStoreFormat;
using store::StoreAlgorithm;
using store::StoredEntry;
using store::StoreFormat;
using store::StoreSuffix;
using store::TarCheck;
using store::TransferSpec;
using store::WithContentCheck;

// --- Timeline history files (NNNNNNNN.history) ---
// They carry no system identifier, so the receiver pins them to a cluster by
// name and content (identical accepted, different refused as any other entry)
// and accepts only what PostgreSQL's readTimeLineHistory would read.
inline constexpr std::size_t kMaxHistoryBytes = 1u << 20;
struct TimelineSwitch {
  std::uint32_t parent = 0;   // the timeline that ended
  std::uint64_t end = 0;      // switch point (LSN) where it ended
};
// The timeline of an 8-uppercase-hex "NNNNNNNN.history" name; 0 otherwise.
std::uint32_t HistoryNameTimeline(std::string_view name);
// Parses the history file of `timeline` (>= 2): at least one switch, parent
// timelines strictly increasing and below `timeline`, switch points "X/X";
// blank and '#' lines skipped; at most kMaxHistoryBytes, no NUL. kCorrupt with
// the line number otherwise.
Result<std::vector<TimelineSwitch>> ParseTimelineHistory(std::string_view text, std::uint32_t timeline);

// The disk archive: the Store (store/store.h) under ROOT, laid out as above.
// Read and Remove work on any entry whose path names a file on disk; the
// object store (store_s3) derives from Archive too and overrides them, so the
// read side (pg/) can take either as an Archive.
class Archive : public store::Store {
 public:
  // Opens ROOT (creating ROOT and ROOT/.incoming, mode 0700, if missing). ROOT
  // itself may be reached through a symlink; nothing inside it is followed.
  static Result<std::unique_ptr<Archive>> Open(const std::string& root, StoreFormat format);
  // The same, placing files (temp data, manifests, system identifiers, final
  // names) through `fs`, which must outlive the Archive and its Incomings:
  // tests pass a fault-injecting FileSystem (tests/support/fault_fs.h).
  static Result<std::unique_ptr<Archive>> Open(const std::string& root, StoreFormat format,
                                               FileSystem& fs);
  // Opens an existing ROOT for the read side only (get, verify, cleanup,
  // status): creates nothing and needs no access to ROOT/.incoming, so a
  // PostgreSQL user that may read (and, for cleanup, delete in) the cluster
  // directories can use an archive a receiver running as another user fills.
  // kNotFound when ROOT does not exist. Begin and PurgeStale fail on it.
  static Result<std::unique_ptr<Archive>> OpenForReading(const std::string& root);
  // Begin and PurgeStale fail on an archive opened for reading.

  // Streams the raw content of a stored entry (as Find/List return it) to
  // `sink`, verified, then calls sink.Finish(): ReadEntry(entry).
  Status Read(const StoredEntry& entry, ByteSink& sink) const override;
  // Deletes a stored entry (cleanup). Ok when it is already gone.
  Status Remove(const StoredEntry& entry) const override;
};

// --- Quarantine: same name, different content ---
// When Commit meets an existing name with other content (kExistsDifferent,
// original kept), the newcomer is moved to ROOT/<cluster>/quarantine/
// <name>.<first 16 hex of its XXH3-128>[.zst|.gz] with a .info file (name,
// received, size, details) beside it, unless the cluster's quarantine would
// exceed its cap (then it is dropped and the message says so). The same
// content is kept once. The error message carries the details: the first
// differing byte offset and, for WAL, the LSN it maps to, both XXH3-128
// hashes, both system identifiers, and a likely cause.
inline constexpr std::uint64_t kDefaultQuarantineCap = 1ull << 30;
struct QuarantinedEntry {
  std::string file;      // file name under quarantine/
  std::string name;      // the archive name it was offered under
  std::string received;  // UTC, YYYYMMDDTHHMMSSZ
  std::uint64_t size = 0;
  std::string details;   // one line, as in the error message
};
// Entries of a cluster's quarantine, sorted by file name; empty when none.
Result<std::vector<QuarantinedEntry>> ListQuarantine(const Archive& a, std::string_view cluster);
// The likely cause of a same-name conflict (also used in the error message).
std::string LikelyConflictCause(std::string_view name, const std::optional<walfmt::WalSegmentInfo>& stored,
                                const std::optional<walfmt::WalSegmentInfo>& incoming, std::int64_t diff,
                                std::uint64_t lsn);

// Decompresses a stored entry (any format) to `sink`, verifying frame
// checksums, then calls sink.Finish(). kCorrupt on damaged stored data; the
// entry's path is opened with O_NOFOLLOW.
Status ReadEntry(const StoredEntry& entry, ByteSink& sink);
// XXH3-128 and size of an entry's raw content.
Result<std::pair<std::uint64_t, Hash128>> HashEntry(const StoredEntry& entry);

}  // namespace walferry::archive
