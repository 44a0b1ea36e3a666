// `walferry status` for a fan-out: per target, what it still lacks (the
// backlog, pg/backlog.h) and whether it answered last time. docs/fanout.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "pg/backlog.h"

namespace walferry::pg {

struct TargetReport {
  std::string target;
  std::size_t lacking = 0;        // backlog entries
  std::string oldest_name;        // the oldest entry's name; "" when none
  double oldest_age_s = -1;       // its age; -1 when none
  bool known = false;             // a push has recorded an answer of this target
  bool reachable = false;         // its last answer was "durable"
  double last_ok_age_s = -1, last_fail_age_s = -1;  // -1 = never
  std::string last_error;
};

// One report per target with a directory in the backlog, sorted by target.
Result<std::vector<TargetReport>> FanoutReports(const Backlog& b, double now);

std::string FanoutText(const std::vector<TargetReport>& r);
std::string FanoutJson(const std::vector<TargetReport>& r);  // a JSON array
std::string FanoutMetrics(const std::vector<TargetReport>& r);  // Prometheus text
// Breaches for --check: a target's oldest entry older than `max_age_s` (< 0 = no limit).
std::vector<std::string> FanoutBreaches(const std::vector<TargetReport>& r, double max_age_s);

}  // namespace walferry::pg
