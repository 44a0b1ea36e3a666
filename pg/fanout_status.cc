#include "pg/fanout_status.h"

#include <cstdio>

#include "pg/status.h"

namespace walferry::pg {
namespace {

std::string Secs(double s) {
  char buf[32];
  if (s < 0) return "never";
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%.0fm", s / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.1fh", s / 3600);
  }
  return buf;
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

std::string PromLabel(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

}  // namespace

Result<std::vector<TargetReport>> FanoutReports(const Backlog& b, double now) {
  WF_ASSIGN(std::vector<std::string> targets, b.Targets());
  std::vector<TargetReport> out;
  for (const auto& t : targets) {
    TargetReport r;
    r.target = t;
    WF_ASSIGN(std::vector<BacklogEntry> entries, b.Entries(t));
    r.lacking = entries.size();
    if (!entries.empty()) {
      r.oldest_name = entries.front().name;
      r.oldest_age_s = std::max(0.0, now - static_cast<double>(entries.front().added_ns) / 1e9);
    }
    if (auto s = b.State(t); s && (s->last_ok != 0 || s->last_fail != 0)) {
      r.known = true;
      r.reachable = s->reachable();
      r.last_ok_age_s = s->last_ok ? std::max(0.0, now - static_cast<double>(s->last_ok)) : -1;
      r.last_fail_age_s = s->last_fail ? std::max(0.0, now - static_cast<double>(s->last_fail)) : -1;
      r.last_error = s->last_error;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string FanoutText(const std::vector<TargetReport>& reports) {
  std::string t = "Fan-out targets:\n";
  if (reports.empty()) return t + "  none recorded in the backlog directory\n";
  for (const auto& r : reports) {
    t += "  " + r.target + ": ";
    t += r.lacking == 0 ? std::string("has everything") : "lacks " + std::to_string(r.lacking) + " file(s), oldest " +
                                                              r.oldest_name + " (" + Secs(r.oldest_age_s) + " ago)";
    if (!r.known) {
      t += "; not contacted yet\n";
    } else if (r.reachable) {
      t += "; reachable (last answer " + Secs(r.last_ok_age_s) + " ago)\n";
    } else {
      t += "; UNREACHABLE (last failure " + Secs(r.last_fail_age_s) + " ago: " + r.last_error + ")\n";
    }
  }
  return t;
}

std::string FanoutJson(const std::vector<TargetReport>& reports) {
  std::string j = "[";
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const auto& r = reports[i];
    j += i ? "," : "";
    j += "{\"target\":" + JsonString(r.target) + ",\"lacking\":" + std::to_string(r.lacking) +
         ",\"oldest\":" + (r.oldest_name.empty() ? std::string("null") : JsonString(r.oldest_name)) +
         ",\"oldest_age_s\":" + (r.oldest_age_s < 0 ? std::string("null") : Num(r.oldest_age_s)) +
         ",\"reachable\":" + (r.known ? (r.reachable ? "true" : "false") : "null") +
         ",\"last_ok_age_s\":" + (r.last_ok_age_s < 0 ? std::string("null") : Num(r.last_ok_age_s)) +
         ",\"last_fail_age_s\":" + (r.last_fail_age_s < 0 ? std::string("null") : Num(r.last_fail_age_s)) +
         ",\"last_error\":" + JsonString(r.last_error) + "}";
  }
  return j + "]";
}

std::string FanoutMetrics(const std::vector<TargetReport>& reports) {
  std::string m;
  m += "# HELP walferry_target_backlog_files Files a fan-out target still lacks (the push backlog).\n";
  m += "# TYPE walferry_target_backlog_files gauge\n";
  for (const auto& r : reports) {
    m += "walferry_target_backlog_files{target=\"" + PromLabel(r.target) + "\"} " + std::to_string(r.lacking) + "\n";
  }
  m += "# HELP walferry_target_backlog_oldest_seconds Age of the oldest file a target lacks (0 when none).\n";
  m += "# TYPE walferry_target_backlog_oldest_seconds gauge\n";
  for (const auto& r : reports) {
    m += "walferry_target_backlog_oldest_seconds{target=\"" + PromLabel(r.target) + "\"} " +
         Num(r.oldest_age_s < 0 ? 0 : r.oldest_age_s) + "\n";
  }
  m += "# HELP walferry_target_reachable 1 when the target's last answer was durable, 0 after a failure.\n";
  m += "# TYPE walferry_target_reachable gauge\n";
  for (const auto& r : reports) {
    if (!r.known) continue;
    m += "walferry_target_reachable{target=\"" + PromLabel(r.target) + "\"} " + (r.reachable ? "1" : "0") + "\n";
  }
  return m;
}

std::vector<std::string> FanoutBreaches(const std::vector<TargetReport>& reports, double max_age_s) {
  std::vector<std::string> out;
  if (max_age_s < 0) return out;
  for (const auto& r : reports) {
    if (r.lacking > 0 && r.oldest_age_s > max_age_s) {
      out.push_back("target " + r.target + " lacks " + std::to_string(r.lacking) + " file(s) since " +
                    Secs(r.oldest_age_s) + " (limit " + Secs(max_age_s) + ")");
    }
  }
  return out;
}

}  // namespace walferry::pg
