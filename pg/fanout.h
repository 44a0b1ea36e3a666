// Quorum fan-out: one file shipped to several targets at once, durable when
// `quorum` of them answered COMMITTED (placed or identical); the targets that
// missed it get an entry in the backlog (pg/backlog.h) and are caught up by a
// later call (Drain), from pg_wal while the file is there, else fetched from a
// target that holds it. Semantics and exit codes: docs/fanout.md.
//
// Thread-safety: one call at a time per FanoutOptions; each call runs one
// thread (one connection) per target and joins them before returning.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/backlog.h"
#include "transport/sender.h"

namespace walferry::pg {

struct FanoutTarget {
  std::string name;                  // as given to --to (the backlog's key)
  transport::SendOptions send;       // how to reach it
  std::optional<RemoteSpec> fetch;   // how to read from it (FETCH), for a recycled source
};

struct FanoutOptions {
  std::vector<FanoutTarget> targets;  // >= 1
  std::size_t quorum = 0;             // 1..targets.size(); 0 = all
  Backlog* backlog = nullptr;         // required
  std::size_t drain_max = 4;          // backlog entries shipped per target per call
  std::chrono::milliseconds drain_time{15000};  // and at most this long per target
  std::string wal_dir;                // where an entry without a known source is looked for
  std::string spool_dir;              // where a file fetched from a peer waits ("" = backlog dir)
  std::function<void(const std::string&)> note;  // one-line warnings (may be empty)
};

struct TargetOutcome {
  std::string target;
  bool durable = false;
  std::optional<Error> error;         // when not durable
  transport::WireOutcome outcome = transport::WireOutcome::kPlaced;
  std::size_t drained = 0;            // backlog entries cleared by this call
  std::size_t drain_failed = 0;       // entries tried and kept
};

struct FanoutResult {
  std::vector<TargetOutcome> targets;  // in the order of FanoutOptions.targets
  std::size_t durable = 0;
};

// Drains each target's backlog (bounded), then ships `path` as `name` to every
// target in parallel. Ok only when at least `quorum` targets are durable, no
// target answered exists-different, and every target that missed the file has
// its backlog entry (durable). Errors, in this order of precedence:
//   kExistsDifferent  some target holds other content under `name` ("TARGET: ...")
//   the first failing target's code  fewer than `quorum` durable
//   kNoSpace (or kIo)  a missed target's backlog entry could not be written
// `result` (when given) is filled in every case.
Status FanoutSendFile(const FanoutOptions& o, const std::string& path, const std::string& name,
                      FanoutResult* result = nullptr);

// Only the backlog part: drains every target (in parallel), as above. Returns
// what was done; never fails as a whole (per target errors are in the result).
FanoutResult DrainBacklogs(const FanoutOptions& o);

}  // namespace walferry::pg
