// Formatting helpers of `walferry status`, and --check's thresholds.
#include <cstdio>

#include "core/format.h"
#include "pg/status_format_internal.h"

namespace walferry::pg {
namespace internal {

std::string Bytes(double b) { return HumanBytes(b); }

std::string Age(double s) {
  if (s < 0) return "-";
  char buf[32];
  long t = static_cast<long>(s + 0.5);
  if (t < 120) {
    std::snprintf(buf, sizeof buf, "%ld s", t);
  } else if (t < 7200) {
    std::snprintf(buf, sizeof buf, "%ld min", t / 60);
  } else if (t < 172800) {
    std::snprintf(buf, sizeof buf, "%.1f h", static_cast<double>(t) / 3600.0);
  } else {
    std::snprintf(buf, sizeof buf, "%ld days", t / 86400);
  }
  return buf;
}

std::string Num1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string JsonDouble(double v) {
  if (v < 0) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string JsonNum(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "null";
}

bool FailingNow(const ServerStatus& s) {
  return s.last_failed_age_s >= 0 && (s.last_archived_age_s < 0 || s.last_failed_age_s < s.last_archived_age_s);
}

}  // namespace internal

using namespace internal;

std::vector<std::string> CheckThresholds(const ServerStatus& s, const Thresholds& t) {
  std::vector<std::string> out;
  if (s.in_recovery) return out;
  if (t.max_backlog >= 0 && s.ready_count > t.max_backlog) {
    out.push_back("backlog " + std::to_string(s.ready_count) + " segments (" + Bytes(static_cast<double>(s.ready_bytes)) +
                  ") > " + std::to_string(t.max_backlog));
  }
  if (t.max_oldest_age_s >= 0 && s.oldest_ready_age_s > t.max_oldest_age_s) {
    out.push_back("oldest .ready " + Age(s.oldest_ready_age_s) + " old > " + Age(t.max_oldest_age_s));
  }
  if (t.max_since_success_s >= 0 && s.ready_count > 0 &&
      (s.last_archived_age_s < 0 || s.last_archived_age_s > t.max_since_success_s)) {
    out.push_back("last successful archive " + (s.last_archived_age_s < 0 ? std::string("never") : Age(s.last_archived_age_s) + " ago") +
                  " while " + std::to_string(s.ready_count) + " segments wait (> " + Age(t.max_since_success_s) + ")");
  }
  if (FailingNow(s)) {
    std::string why = s.push_failure && s.push_failure->name == s.last_failed_wal ? ": " + s.push_failure->reason : "";
    out.push_back("archiving " + s.last_failed_wal + " failed " + Age(s.last_failed_age_s) + " ago" + why);
  }
  if (s.ready_count < 0) out.push_back("no archive backlog figures (give --pgdata, or run on the server)");
  return out;
}

std::string CheckSummary(const ServerStatus& s, const std::vector<std::string>& breaches) {
  std::string figures = "backlog " + std::to_string(s.ready_count < 0 ? 0 : s.ready_count) + " segments (" +
                        Bytes(static_cast<double>(s.ready_bytes < 0 ? 0 : s.ready_bytes)) + "), oldest " +
                        Age(s.oldest_ready_age_s) + ", last archived " +
                        (s.last_archived_age_s < 0 ? std::string("never") : Age(s.last_archived_age_s) + " ago");
  if (breaches.empty()) return "ARCHIVE OK - " + figures + "\n";
  std::string t = "ARCHIVE CRITICAL - ";
  for (std::size_t i = 0; i < breaches.size(); ++i) t += (i ? "; " : "") + breaches[i];
  return t + " | " + figures + "\n";
}

}  // namespace walferry::pg
