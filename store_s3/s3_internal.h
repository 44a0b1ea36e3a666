// What the object-store archive's files share (store_s3/s3_archive.cc: the
// read side; s3_incoming.cc: one transfer; s3_objects.cc: reading and
// comparing stored objects; s3_state.cc: the resume state); only store_s3/
// includes this. The layout and the rules are in s3_archive.h.
#pragma once

#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "archive/archive.h"
#include "core/fd.h"
#include "core/hash.h"
#include "core/result.h"
#include "core/stream.h"
#include "s3/client.h"
#include "store_s3/s3_archive.h"

namespace walferry::store_s3 {

using archive::CommitOutcome;
using archive::EntryKind;
using archive::StoreFormat;
using archive::StoredEntry;

inline constexpr char kMetaSize[] = "wf-size";
inline constexpr char kMetaHash[] = "wf-xxh3";
inline constexpr char kMetaData[] = "wf-data";

inline std::span<const std::byte> Bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
inline std::string_view KindDir(EntryKind k) { return k == EntryKind::kWal ? "wal" : "files"; }

// A whole decimal number (no sign, no trailing characters).
template <typename T>
bool ParseNum(std::string_view s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && ec == std::errc() && p == s.data() + s.size();
}

// Shared by the archive and its incomings.
struct Shared {
  S3ArchiveOptions opts;
  std::unique_ptr<s3::ClientPool> pool;
  UniqueFd state_fd;
  std::mutex mu;
  std::set<std::string> active;  // transfer ids and cluster/name keys in progress here
  // Confirmed system identifiers per cluster: the object is created once and
  // never rewritten, so one confirmation per process is enough.
  std::map<std::string, std::uint64_t> sysids;

  std::string Key(std::string_view rest) const {
    return opts.prefix.empty() ? std::string(rest) : opts.prefix + "/" + std::string(rest);
  }
  std::string Url() const { return "s3://" + opts.client.bucket + (opts.prefix.empty() ? "" : "/" + opts.prefix); }
};

// Splits an object name into archive name and format by its suffix.
std::pair<std::string, StoreFormat> SplitSuffix(std::string_view file);
// `bytes` random bytes as hex.
std::string RandomHex(int bytes);
// Reads the stored object `key` (following a marker) and streams its raw
// content to `sink`, verified against wf-size/wf-xxh3; finishes the sink.
Status ReadObject(Shared& sh, const std::string& key, StoreFormat format, ByteSink& sink);
// Compares the final object at `key` with (size, hash): identical or not; an
// object without walferry's metadata counts as different.
Result<bool> SameContent(s3::Client& c, const std::string& key, std::uint64_t size, const Hash128& h);

// A transfer's resume state (STATE/<transfer_id>.s3state), checksummed text.
struct State {
  std::string transfer_id, cluster, name, upload_id, body_key;
  std::uint64_t chunks = 0, raw_offset = 0, spool_len = 0;
  std::string hash_state;
  std::vector<s3::Part> parts;
  std::uint64_t wal_sysid = 0;
  bool is_segment = false;
};
std::string Serialize(const State& s);
// False on a damaged or foreign file (then the transfer starts from zero).
bool Deserialize(const std::string& text, State* s);

// archive::Archive::Begin of the object store: checks the spec, claims the
// transfer in `sh` and opens (or resumes) its local state.
Result<std::unique_ptr<archive::Incoming>> BeginTransfer(const std::shared_ptr<Shared>& sh,
                                                        const archive::TransferSpec& spec);

}  // namespace walferry::store_s3
