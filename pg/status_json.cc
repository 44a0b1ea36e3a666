// `walferry status --json`.
#include <cstdio>

#include "pg/status_format_internal.h"

namespace walferry::pg {
namespace {

using namespace internal;

std::string ServerJson(const ServerStatus& s) {
  std::string j = "{\"major\":" + std::to_string(s.major) +
       ",\"role\":" + JsonString(s.in_recovery ? "standby" : "primary") + ",\"replication\":[";
  for (std::size_t i = 0; i < s.replication.size(); ++i) {
    const auto& r = s.replication[i];
    if (i) j += ",";
    j += "{\"application_name\":" + JsonString(r.application_name) +
         ",\"client_addr\":" + JsonString(r.client_addr) + ",\"state\":" + JsonString(r.state) +
         ",\"sync_state\":" + JsonString(r.sync_state) + ",\"sent_lag_bytes\":" +
         JsonNum(r.sent_lag) + ",\"write_lag_bytes\":" + JsonNum(r.write_lag) +
         ",\"flush_lag_bytes\":" + JsonNum(r.flush_lag) +
         ",\"replay_lag_bytes\":" + JsonNum(r.replay_lag) + "}";
  }
  j += "],\"archiver\":{\"archived_count\":" + std::to_string(s.archived_count) +
       ",\"last_archived_wal\":" + JsonString(s.last_archived_wal) +
       ",\"last_archived_time\":" + JsonString(s.last_archived_time) +
       ",\"last_archived_age_seconds\":" + JsonDouble(s.last_archived_age_s) +
       ",\"failed_count\":" + std::to_string(s.failed_count) +
       ",\"last_failed_wal\":" + JsonString(s.last_failed_wal) +
       ",\"last_failed_time\":" + JsonString(s.last_failed_time) +
       ",\"last_failed_age_seconds\":" + JsonDouble(s.last_failed_age_s) +
       ",\"failing\":" + (FailingNow(s) ? "true" : "false") +
       ",\"last_failure_reason\":" +
       (s.push_failure && s.push_failure->name == s.last_failed_wal ? JsonString(s.push_failure->reason) : "null") +
       ",\"archive_mode\":" + JsonString(s.archive_mode) +
       ",\"archive_command\":" + JsonString(s.archive_command) +
       ",\"archive_library\":" + JsonString(s.archive_library) + "}";
  j += ",\"ready_count\":" + (s.ready_count >= 0 ? std::to_string(s.ready_count) : "null");
  j += ",\"backlog\":{\"segments\":" + (s.ready_count >= 0 ? std::to_string(s.ready_count) : "null") +
       ",\"bytes\":" + (s.ready_bytes >= 0 ? std::to_string(s.ready_bytes) : "null") +
       ",\"oldest_age_seconds\":" + JsonDouble(s.oldest_ready_age_s) +
       ",\"window_seconds\":" + std::to_string(s.rate_window_s) +
       ",\"written_in_window\":" + (s.written_in_window >= 0 ? std::to_string(s.written_in_window) : "null") +
       ",\"archived_in_window\":" + (s.archived_in_window >= 0 ? std::to_string(s.archived_in_window) : "null") + "}";
  if (!s.in_recovery) {
    j += ",\"agent\":{\"socket\":" + JsonString(s.agent_socket) +
         ",\"running\":" + (s.agent_running ? "true" : "false") + ",\"status\":{";
    bool first_kv = true;
    for (const auto& [k, v] : s.agent) {
      j += (first_kv ? "" : ",") + JsonString(k) + ":" + JsonString(v);
      first_kv = false;
    }
    j += "}}";
  }
  if (s.in_recovery) {
    j += ",\"receive_lsn\":" + JsonString(s.receive_lsn) +
         ",\"replay_lsn\":" + JsonString(s.replay_lsn) +
         ",\"replay_time\":" + JsonString(s.replay_time) +
         ",\"wal_receiver_status\":" + JsonString(s.wal_receiver_status);
  }
  j += "}";
  return j;
}

std::string JsonArray(const std::vector<std::string>& items) {
  std::string j = "[";
  for (std::size_t i = 0; i < items.size(); ++i) j += (i ? "," : "") + JsonString(items[i]);
  return j + "]";
}

std::string ClusterJson(const ClusterReport& c, const ArchiveUsage* usage) {
  std::string j = "{\"cluster\":" + JsonString(c.cluster) + ",\"wal_files\":" + std::to_string(c.wal_files) +
                  ",\"other_files\":" + std::to_string(c.other_files) +
                  ",\"segment_size\":" + std::to_string(c.segment_size) +
                  ",\"newest_segment\":" + JsonString(c.newest_segment) + ",\"gaps\":" + JsonArray(c.gaps) +
                  ",\"problems\":" + JsonArray(c.problems) + ",\"quarantined\":" + JsonArray(c.quarantined);
  if (usage) {
    j += ",\"bytes_on_disk\":" + std::to_string(usage->bytes) +
         ",\"last_write_age_seconds\":" + JsonDouble(usage->last_write_age_s);
  }
  return j + "}";
}

}  // namespace

std::string JsonString(std::string_view v) {
  std::string out = "\"";
  for (char ch : v) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

std::string StatusJson(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive,
                       const std::vector<ArchiveUsage>* usage) {
  std::string j = "{";
  bool first = true;
  auto field = [&](const std::string& k) {
    if (!first) j += ",";
    first = false;
    j += JsonString(k) + ":";
  };
  if (server) {
    field("server");
    j += ServerJson(*server);
  }
  if (archive) {
    field("archive");
    j += "[";
    for (std::size_t i = 0; i < archive->size(); ++i) {
      if (i) j += ",";
      j += ClusterJson((*archive)[i], usage && i < usage->size() ? &(*usage)[i] : nullptr);
    }
    j += "]";
  }
  return j + "}\n";
}

}  // namespace walferry::pg
