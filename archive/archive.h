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

#include "archive/tar_check.h"
#include "compress/codec.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/result.h"
#include "core/names.h"  // ValidateClusterName
#include "walfmt/wal_header.h"
#include "core/stream.h"

namespace walferry::archive {

// How files rest on disk. kZstd keeps the received frames as they are.
enum class StoreFormat : unsigned char { kRaw = 0, kZstd = 1, kGzip = 2 };
Result<StoreFormat> ParseStoreFormat(std::string_view s);  // "zstd" | "gzip" | "raw"
std::string_view StoreSuffix(StoreFormat f);                // ".zst" | ".gz" | ""
compress::Algorithm StoreAlgorithm(StoreFormat f);

enum class EntryKind : unsigned char { kWal = 1, kFile = 2 };

// Validates `name` (non-empty, <= 255 bytes, no '/', no NUL or control
// characters, not "." or "..", no leading '.', no "..") and classifies it:
// 24-hex segment names and names ending .history/.backup/.partial -> kWal,
// anything else -> kFile. kRefused with a one-line reason otherwise.
Result<EntryKind> ClassifyName(std::string_view name);

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

// --- Stored entries (read side, for get/verify/cleanup/status) ---
struct StoredEntry {
  std::string name;      // archive name without store suffix
  std::string path;      // absolute path of the file on disk
  StoreFormat format;    // from the suffix
  EntryKind kind;
};

// --- Incoming transfers ---
struct TransferSpec {
  std::string cluster;
  std::string name;
  std::string transfer_id;   // 32 hex chars chosen by the sender; same id = same transfer
  std::int64_t raw_size = -1;  // -1 when unknown (pipes)
  // Content rule for file entries (archive/tar_check.h): by default a stream
  // that is a tar is stored only when complete; WAL entries are never tars.
  ContentCheck content = ContentCheck::kAuto;
};

enum class CommitOutcome : unsigned char { kPlaced, kAlreadyIdentical };

// After an error that ends the transfer (kRefused, kCorrupt, kNoSpace,
// kExistsDifferent, or any Commit result) the temp data is gone and further
// Append/Sync/Commit calls fail with kInternal. kProtocol (chunk out of order)
// and kIo leave the transfer as it was, resumable.
class Incoming {
 public:
  virtual ~Incoming() = default;  // an uncommitted Incoming keeps its state for resume
  // Next chunk index the receiver expects (> 0 when resuming), and its raw offset.
  virtual std::uint64_t next_chunk() const = 0;
  virtual std::uint64_t next_raw_offset() const = 0;
  // Appends chunk `index` (must equal next_chunk()). `raw` is the verified raw
  // bytes; `frame` the compressed frame as received in `frame_algorithm`, which
  // is written as-is when it matches the store format (no recompression).
  // For a 24-hex WAL name, chunk 0 is checked with ParseWalHeader/CheckWalName
  // and against the cluster's system identifier (kRefused on mismatch).
  // kNoSpace on a full disk (the temp data is then removed).
  virtual Status Append(std::uint64_t index, std::span<const std::byte> raw,
                        compress::Algorithm frame_algorithm,
                        std::span<const std::byte> frame) = 0;
  // fdatasync the data and persist the manifest; returns the number of chunks
  // durable (resume point). Cheap to call when nothing changed.
  virtual Result<std::uint64_t> Sync() = 0;
  // Needs no Sync before it (that would only add a manifest write and two
  // fsyncs to the critical path of a push).
  // Verifies the total size and XXH3-128 of the raw stream, fsyncs, renames
  // with RENAME_NOREPLACE to the final name and fsyncs the directory. If the
  // final name exists: identical raw content -> kAlreadyIdentical (nothing
  // rewritten), different -> kExistsDifferent (original untouched). Either way
  // the temp data and manifest are removed.
  virtual Result<CommitOutcome> Commit(std::uint64_t raw_size, const Hash128& raw_hash) = 0;
  // Drops temp data and manifest (sender gave up, or a fatal error).
  virtual void Abandon() = 0;
  // Streams the raw bytes appended so far (a resumed transfer's durable part)
  // to `sink`, then finishes it. kUnsupported when the store cannot read its
  // temp data back (then a check that needs it restarts the transfer).
  virtual Status ReadDurable(ByteSink& sink) {
    (void)sink;
    return Error(ErrorCode::kUnsupported, "this store cannot read a transfer's temp data back");
  }
};

// Wraps `inner` (just returned by Begin for `spec`) so that the content rule
// of spec.content (archive/tar_check.h) decides at Commit: a stream the rule
// refuses is abandoned and Commit returns kRefused "NAME refused: ...;
// nothing stored". WAL entries and ContentCheck::kNone get `inner` back as is.
// A resumed transfer's durable part is read back (ReadDurable) to rebuild the
// check. When that fails, `inner` is abandoned and kUnsupported returned (the
// caller Begins again from zero) -- except for kAuto on a store that cannot
// read back (kUnsupported from ReadDurable): then `inner` comes back unchecked
// and `note` (if given) says so, rather than losing the resume.
Result<std::unique_ptr<Incoming>> WithContentCheck(std::unique_ptr<Incoming> inner, const TransferSpec& spec,
                                                   std::string* note = nullptr);

class Archive {
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
  virtual ~Archive() = default;

  virtual StoreFormat format() const = 0;
  virtual const std::string& root() const = 0;

  // Starts a transfer, or resumes the one with the same transfer_id and name
  // (then next_chunk() > 0). Creates ROOT/<cluster>/{wal,files} as needed.
  // If the final name already exists the transfer still runs (so identical
  // content can be confirmed at Commit). Errors: kRefused for a bad cluster
  // or entry name, a symlinked directory under ROOT, or a transfer of the same
  // cluster/name or transfer_id in progress (in this process or, by flock,
  // another); kProtocol for a transfer_id that is not 32 hex digits; kNoSpace.
  // A raw store also refuses file names ending in .zst/.gz (they would read
  // back as compressed entries). The resume manifest is trusted only when its
  // checksum, identity and hash state are valid; otherwise the transfer starts
  // at chunk 0.
  virtual Result<std::unique_ptr<Incoming>> Begin(const TransferSpec& spec) = 0;

  // Finds a stored entry by archive name, whatever its format. kNotFound if absent.
  virtual Result<StoredEntry> Find(std::string_view cluster, std::string_view name) const = 0;
  // All entries of a cluster of one kind, sorted by name (symlinks and other
  // non-regular files are skipped). kNotFound when the cluster does not exist;
  // empty when it has no directory of that kind yet.
  virtual Result<std::vector<StoredEntry>> List(std::string_view cluster, EntryKind kind) const = 0;
  // Cluster directories under ROOT, sorted.
  virtual Result<std::vector<std::string>> Clusters() const = 0;

  // The WAL system identifier recorded for `cluster` (nullopt before its first
  // segment); kNotFound when the cluster directory does not exist.
  virtual Result<std::optional<std::uint64_t>> SystemIdentifier(std::string_view cluster) const = 0;

  // Per-cluster size cap of the quarantine (default kDefaultQuarantineCap).
  virtual void SetQuarantineCap(std::uint64_t bytes) { (void)bytes; }

  // Streams the raw content of a stored entry (as Find/List return it) to
  // `sink`, verified, then calls sink.Finish(). The disk archive reads
  // entry.path (ReadEntry); an object store reads the object it names.
  virtual Status Read(const StoredEntry& entry, ByteSink& sink) const;
  // Deletes a stored entry (cleanup). Ok when it is already gone.
  virtual Status Remove(const StoredEntry& entry) const;

  // Removes temp data of transfers untouched for longer than `max_age_seconds`,
  // skipping transfers in progress (in this process, or flock'ed by another).
  virtual Status PurgeStale(std::int64_t max_age_seconds) = 0;
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
