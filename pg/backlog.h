// The fan-out backlog: per target, the names a quorum push made durable
// elsewhere but this target missed, kept on the primary until the target has
// them (docs/fanout.md).
//
// Layout under DIR (mode 0700, owned by the user running push):
//   DIR/<target key>/<20-digit added ns>-<NAME>   one entry per missed file
//   DIR/<target key>/state                        last answer of the target
// An entry is written as a whole (temp file, fsync, rename, directory fsync),
// so a crash leaves either no entry or a complete one; a temp file left by a
// crash is removed on the next scan. An entry whose text does not parse (a
// torn write on a filesystem without those guarantees, a hand edit) is not
// fatal: the name still comes from its file name and the source is looked up
// again in pg_wal (`source` empty); Entries() rewrites it well-formed.
//
// Thread-safety: distinct targets may be used from distinct threads; one
// target from one thread at a time (push runs one thread per target).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace walferry::pg {

inline constexpr std::size_t kDefaultBacklogMax = 4096;

struct BacklogEntry {
  std::string file;          // entry file name under the target's directory
  std::string target;        // HOST:PORT (or the URL) as given to --to
  std::string name;          // archive name of the missed file
  std::string source;        // absolute path it was read from; "" = unknown (repaired)
  std::int64_t added_ns = 0; // when the target missed it (CLOCK_REALTIME, ns)
  bool repaired = false;     // the text did not parse; rebuilt from the file name
};

struct TargetState {
  std::string target;
  std::int64_t last_ok = 0;    // unix seconds of the last "durable" answer; 0 = never
  std::int64_t last_fail = 0;  // unix seconds of the last failure; 0 = never
  std::string last_error;      // its one-line message
  bool reachable() const { return last_ok >= last_fail && last_ok != 0; }
};

// The entry file's text and its parser (fuzzed: fuzz/backlog_entry_fuzz.cc).
// Parse returns nullopt for anything but a complete, checksummed entry.
std::string FormatBacklogEntry(const BacklogEntry& e);
std::optional<BacklogEntry> ParseBacklogEntry(std::string_view text);
std::string FormatTargetState(const TargetState& s);
std::optional<TargetState> ParseTargetState(std::string_view text);

// Directory name of a target: its text with every byte outside [A-Za-z0-9.-]
// as '_' plus 8 hex digits of its hash (so "a:1" and "a_1" never share one).
std::string TargetKey(std::string_view target);

// The default backlog directory: beside the TLS directory
// (<tls-dir>/../walferry-backlog) when one is given, else
// $XDG_STATE_HOME (or ~/.local/state)/walferry/backlog.
std::string DefaultBacklogDir(const std::string& tls_dir);

class Backlog {
 public:
  // Opens DIR, creating it (and parents) mode 0700 when missing. kRefused when
  // DIR is a symlink, not a directory, not ours, or open to group/other.
  static Result<Backlog> Open(const std::string& dir, std::size_t max_entries = kDefaultBacklogMax);
  // For `status` (any user, e.g. root): creates, repairs and removes nothing;
  // kNotFound when DIR does not exist. Add/Remove fail, RecordResult does nothing.
  static Result<Backlog> OpenForReading(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::size_t max_entries() const { return max_; }

  // Records that `target` lacks `name` (read from `source`). Idempotent: an
  // entry for the name already there is kept (Ok). kNoSpace "backlog of
  // TARGET full (N entries)" when the target already has max_entries; kIo
  // when the entry cannot be made durable.
  Status Add(const std::string& target, const std::string& name, const std::string& source);
  // The target's entries, oldest first. Repairs torn entries, removes stale
  // temp files; an entry file whose name is not an entry is skipped.
  Result<std::vector<BacklogEntry>> Entries(const std::string& target) const;
  // Removes one entry (after the target answered durable); durable too.
  Status Remove(const BacklogEntry& e) const;
  // Targets that have a directory here (with or without entries), by their
  // recorded name, sorted.
  Result<std::vector<std::string>> Targets() const;

  // The target's last answer, for `status` ("reachable or not").
  void RecordResult(const std::string& target, bool ok, const std::string& error) const;
  std::optional<TargetState> State(const std::string& target) const;

 private:
  Backlog(std::string dir, std::size_t max, bool read_only)
      : dir_(std::move(dir)), max_(max), read_only_(read_only) {}
  Result<std::string> TargetDir(const std::string& target, bool create) const;
  std::string dir_;
  std::size_t max_;
  bool read_only_ = false;
};

}  // namespace walferry::pg
