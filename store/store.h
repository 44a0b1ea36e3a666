// The storage contract the receiver (transport/server.h) writes through and
// the read side (pg/, cli/) reads through: entry names and kinds, store
// formats, incoming transfers and the content rule applied at their commit.
// Implemented by the disk archive (archive/archive.h) and the object store
// (store_s3/s3_archive.h); the binary (cli/) picks one and hands it to the
// server, so transport/ depends on this interface, not on a backend.
//
// The guarantee every implementation gives: a final name only ever holds a
// complete, verified, durable entry (for the disk archive: fsynced, renamed
// with RENAME_NOREPLACE, directory fsynced; for a bucket: the create-if-absent
// PUT answered).
//
// Thread-safety: a Store may be shared between threads (connections); an
// Incoming belongs to one connection. Two Incomings for the same cluster/name
// at once: the second Begin gets kRefused ("transfer in progress").
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compress/codec.h"
#include "core/hash.h"
#include "core/result.h"
#include "core/stream.h"
#include "store/tar_check.h"

namespace walferry::store {

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
  // Content rule for file entries (store/tar_check.h): by default a stream
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
// of spec.content (store/tar_check.h) decides at Commit: a stream the rule
// refuses is abandoned and Commit returns kRefused "NAME refused: ...;
// nothing stored". WAL entries and ContentCheck::kNone get `inner` back as is.
// A resumed transfer's durable part is read back (ReadDurable) to rebuild the
// check. When that fails, `inner` is abandoned and kUnsupported returned (the
// caller Begins again from zero) -- except for kAuto on a store that cannot
// read back (kUnsupported from ReadDurable): then `inner` comes back unchecked
// and `note` (if given) says so, rather than losing the resume.
Result<std::unique_ptr<Incoming>> WithContentCheck(std::unique_ptr<Incoming> inner, const TransferSpec& spec,
                                                   std::string* note = nullptr);

class Store {
 public:
  virtual ~Store() = default;

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
  virtual Status Read(const StoredEntry& entry, ByteSink& sink) const = 0;
  // Threads one Read may decompress with (0, the default: the machine's
  // cores). A receiver serving many connections sets 1: the connections are
  // its parallelism, and each read's memory stays small (ReadMemory).
  virtual void SetReadThreads(std::size_t threads) { (void)threads; }
  // Most bytes of memory one Read of `entry` allocates at once (buffers and
  // decoder state), which the receiver charges to its buffer budget (serve
  // --max-buffer-mb) for FETCH and HAVE. The default, for a store that cannot
  // tell: kDefaultReadMemory, a read of frames of the sender's default chunk
  // (1 MiB) on two threads.
  static constexpr std::uint64_t kDefaultReadMemory = 16ull << 20;
  virtual std::uint64_t ReadMemory(const StoredEntry& entry) const {
    (void)entry;
    return kDefaultReadMemory;
  }
  // Deletes a stored entry (cleanup). Ok when it is already gone.
  virtual Status Remove(const StoredEntry& entry) const = 0;

  // Removes temp data of transfers untouched for longer than `max_age_seconds`,
  // skipping transfers in progress (in this process, or flock'ed by another).
  virtual Status PurgeStale(std::int64_t max_age_seconds) = 0;
};

}  // namespace walferry::store
