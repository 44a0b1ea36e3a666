// Standby-side operations on a local walferry archive (the directory a
// receiver fills): restore_command (`get`, with prefetch), archive_cleanup_command
// (`cleanup`), `verify`, and the archive part of `status`.
//
// Thread-safety: functions are independent; concurrent `get`s of the same
// prefetch directory coordinate through a lock file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "core/result.h"
#include "core/stream.h"
#include "transport/net.h"

namespace walferry::pg {

// Picks the cluster: `requested` when set; else the only cluster under ROOT;
// else "main".
Result<std::string> ResolveCluster(const archive::Archive& a, const std::string& requested);

// Where `get` reads entries of one cluster from: the local archive, or a
// receiver over the network (FETCH). Not thread-safe.
class EntrySource {
 public:
  virtual ~EntrySource() = default;
  // Streams the raw (decompressed, checksum-verified) content of entry `name`
  // to `sink` (Finish is called). kNotFound when there is no such entry.
  virtual Status Read(const std::string& name, ByteSink& sink) = 0;
};
std::unique_ptr<EntrySource> LocalSource(const archive::Archive& a, std::string cluster);

struct RemoteSpec {
  transport::Endpoint endpoint;
  transport::TlsConfig tls;
  std::string cluster;  // claimed on an insecure connection; the certificate decides otherwise
};
// Each Read opens one connection, sends FETCH and verifies every chunk's
// XXH3-64 and the whole stream's size and XXH3-128 (kCorrupt otherwise).
std::unique_ptr<EntrySource> RemoteSource(RemoteSpec spec);

struct GetOptions {
  std::string name;          // %f: archive name (segment, .history, .backup, ...)
  std::string dest;          // %p: where PostgreSQL wants it
  std::string cluster;       // resolved cluster
  int prefetch = 8;          // segments to fetch ahead in the background; 0 = off
  std::string prefetch_dir;  // "" = DefaultPrefetchDir(dest)
  std::uint64_t prefetch_max_bytes = 256u << 20;  // read-ahead bound in bytes (with `prefetch`)
  std::string self;          // walferry binary for the background worker ("" = no prefetch)
  std::vector<std::string> worker_args;  // archive-selecting args for the worker (--from ROOT ...)
};

// The prefetch cache when none is given: $XDG_CACHE_HOME (or ~/.cache)
// /walferry/prefetch/<PGDATA path>, outside PGDATA; PGDATA.walferry-prefetch
// (a sibling) when the cache home is unset or lies inside PGDATA.
std::string DefaultPrefetchDir(const std::string& dest);

// restore_command: writes the entry `name` to `dest` atomically (temp file,
// rename; fsynced too unless it is a segment, which PostgreSQL fsyncs itself
// when it keeps it: KeepFileRestoredFromArchive). A prefetched copy is used when its checksum verifies;
// otherwise the entry is read from the archive, decompressed and verified
// (frame checksums; for a segment, its first page header must name it and its
// length must be the segment size). kNotFound (quietly reported by the caller)
// when the archive has no such entry; kCorrupt on a bad entry. Starts the
// background prefetch of the following segments when `name` is a segment.
Status GetFromArchive(EntrySource& source, const GetOptions& o);

// The background worker: fetches the `count` segments after `name` that are in
// the archive and not yet in `dir`, each stored as raw bytes followed by a
// 24-byte trailer (XXH3-128 + magic), and drops cached segments at or before
// `name`. Returns quietly when another worker holds the directory's lock.
// `segment_size` (from the requested segment's header) numbers the segments.
Status PrefetchSegments(EntrySource& source, const std::string& name, std::uint32_t segment_size, int count,
                        const std::string& dir);

struct CleanupResult {
  std::vector<std::string> removed;  // archive names
};
// archive_cleanup_command: removes the cluster's WAL entries strictly older
// than `restart_point` (see SelectForCleanup). With dry_run, lists only.
Result<CleanupResult> CleanupArchive(const archive::Archive& a, const std::string& cluster,
                                     const std::string& restart_point, bool dry_run);

struct ClusterReport {
  std::string cluster;
  std::uint64_t wal_files = 0;
  std::uint64_t other_files = 0;
  std::uint32_t segment_size = 0;     // 0 when unknown (no segment)
  std::string newest_segment;         // "" when none
  std::vector<std::string> gaps;      // "A..B (N segments)" per hole
  std::vector<std::string> problems;  // "NAME: reason" per unreadable/corrupt file
  // "quarantine/FILE (NAME, received T, N bytes): details" per refused
  // same-name-different-content newcomer (archive::ListQuarantine).
  std::vector<std::string> quarantined;
};

// verify (full = true): reads every stored file of each cluster in full
// (decompression verifies frame checksums), checks segment headers and sizes,
// and finds holes in each timeline. status (full = false): names, newest
// segment and holes only (reads one segment header for the segment size).
// `clusters` empty = all clusters.
Result<std::vector<ClusterReport>> InspectArchive(const archive::Archive& a,
                                                  const std::vector<std::string>& clusters,
                                                  bool full);

}  // namespace walferry::pg
