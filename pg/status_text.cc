// `walferry status` as text for a person (colours on a terminal).
#include <cstdlib>

#include "pg/status_format_internal.h"

namespace walferry::pg {
namespace {

using namespace internal;

// The agent line, and what the agent's STATUS said.
std::string AgentText(const ServerStatus& s, const Paint& paint) {
  std::string t = "  agent:         " +
                  (s.agent_running ? paint("running", kGreen) + " (" + s.agent_socket + ")"
                                   : "not running (no agent socket at " + s.agent_socket + "; push works alone)") +
                  "\n";
  if (s.agent.empty()) return t;
  auto get = [&](const char* k) {
    auto it = s.agent.find(k);
    return it == s.agent.end() ? std::string("-") : it->second;
  };
  t += "    pid " + get("pid") + ", shipped " + get("shipped_files") + " file(s) (" +
       Bytes(std::strtod(get("shipped_bytes").c_str(), nullptr)) + "), " + get("in_flight") + " in flight, " +
       get("queued") + " queued, " + get("requests_hit") + "/" + get("requests") +
       " push requests already durable, " + get("failures") + " failure(s)";
  if (get("last_error") != "-") t += ", last error: " + paint(get("last_error"), kRed);
  t += "\n";
  return t;
}

// A primary's archiving: state, backlog, rates, last success and failure, agent.
std::string ArchivingText(const ServerStatus& s, const Paint& paint) {
  std::string t;
  std::string how = !s.archive_library.empty() ? "archive_library '" + s.archive_library + "'"
                    : s.archive_command.find("walferry") != std::string::npos ? "walferry push (archive_command)"
                    : s.archive_command.empty() || s.archive_command == "(disabled)" ? "no archive_command"
                    : "archive_command '" + s.archive_command + "'";
  const bool failing = FailingNow(s);
  std::string state = s.archive_mode == "off" ? paint("off", kRed)
                      : failing                ? paint("FAILING", kRed)
                      : s.ready_count > 1      ? paint("behind", kYellow)
                                               : paint("ok", kGreen);
  t += "  archiving:     " + state + " (archive_mode " + OrDash(s.archive_mode) + ", " + how + ")\n";
  if (s.ready_count >= 0) {
    std::string backlog = std::to_string(s.ready_count) + " segment(s) waiting (" +
                          Bytes(static_cast<double>(s.ready_bytes)) + ")";
    if (s.ready_count > 0) backlog += ", oldest " + Age(s.oldest_ready_age_s);
    t += "  backlog:       " + (s.ready_count > 1 ? paint(backlog, kYellow) : backlog) + "\n";
    if (s.written_in_window >= 0) {
      const double minutes = s.rate_window_s / 60.0;
      t += "  last " + std::to_string(s.rate_window_s / 60) + " min:    WAL written " +
           Num1(static_cast<double>(s.written_in_window) / minutes) + " segments/min, archived " +
           Num1(static_cast<double>(s.archived_in_window) / minutes) + " segments/min\n";
    }
  } else {
    t += "  backlog:       unknown (give --pgdata, or run status on the server)\n";
  }
  t += "  last archived: " + OrDash(s.last_archived_wal) +
       (s.last_archived_age_s >= 0 ? ", " + Age(s.last_archived_age_s) + " ago" : "") + " (" +
       std::to_string(s.archived_count) + " since the statistics reset)\n";
  if (s.failed_count > 0) {
    std::string f = OrDash(s.last_failed_wal) + ", " + Age(s.last_failed_age_s) + " ago (" +
                    std::to_string(s.failed_count) + " failure(s))";
    if (s.push_failure && s.push_failure->name == s.last_failed_wal) f += ": " + s.push_failure->reason;
    t += "  last failure:  " + (failing ? paint(f, kRed) : f) + "\n";
  }
  return t + AgentText(s, paint);
}

std::string ServerText(const ServerStatus& s, const Paint& paint) {
  std::string t =
      paint("PostgreSQL " + std::to_string(s.major) + " " + (s.in_recovery ? "standby" : "primary"), kBold) + "\n";
  if (s.in_recovery) {
    const bool streaming = s.wal_receiver_status == "streaming";
    t += "  WAL receiver:  " + paint(OrDash(s.wal_receiver_status), streaming ? kGreen : kYellow) +
         ", received up to " + OrDash(s.receive_lsn) + ", replayed up to " + OrDash(s.replay_lsn) + "\n";
    t += "  last replayed transaction: " + OrDash(s.replay_time) + "\n";
  } else {
    t += ArchivingText(s, paint);
  }
  t += "  standbys:      " + std::to_string(s.replication.size()) + "\n";
  for (const auto& r : s.replication) {
    const bool streaming = r.state == "streaming";
    t += "    " + OrDash(r.application_name) + " (" + r.client_addr + "): " +
         paint(OrDash(r.state), streaming ? kGreen : kYellow) + ", " + OrDash(r.sync_state) +
         ", lag sent " + (r.sent_lag ? Bytes(static_cast<double>(*r.sent_lag)) : "-") + ", replayed " +
         (r.replay_lag ? Bytes(static_cast<double>(*r.replay_lag)) : "-") + "\n";
  }
  return t;
}

std::string ClusterText(const ClusterReport& c, const ArchiveUsage* usage, const Paint& paint) {
  std::string t = paint("archive cluster " + c.cluster, kBold) + "\n";
  t += "  newest segment: " + OrDash(c.newest_segment) + " (" + std::to_string(c.wal_files) + " WAL file(s), " +
       std::to_string(c.other_files) + " other file(s))\n";
  if (usage) {
    t += "  size on disk:   " + Bytes(static_cast<double>(usage->bytes)) + ", last write " +
         (usage->last_write_age_s < 0 ? std::string("-") : Age(usage->last_write_age_s) + " ago") + "\n";
  }
  if (c.gaps.empty()) {
    t += "  holes:          " + paint("none", kGreen) + "\n";
  } else {
    for (const auto& g : c.gaps) t += "  hole:           " + paint("missing " + g, kRed) + "\n";
  }
  for (const auto& p : c.problems) t += "  problem:        " + paint(p, kRed) + "\n";
  for (const auto& q : c.quarantined) t += "  quarantined: " + paint(q, kYellow) + "\n";
  return t;
}

}  // namespace

std::string StatusText(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive,
                       const std::vector<ArchiveUsage>* usage, bool colour) {
  Paint paint{colour};
  std::string t;
  if (server) t += ServerText(*server, paint);
  if (archive) {
    for (std::size_t i = 0; i < archive->size(); ++i) {
      t += ClusterText((*archive)[i], usage && i < usage->size() ? &(*usage)[i] : nullptr, paint);
    }
    if (archive->empty()) t += "archive: no clusters yet\n";
  }
  return t;
}

}  // namespace walferry::pg
