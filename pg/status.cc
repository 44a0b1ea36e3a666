// `walferry status`: what the server says (through psql), with the backlog
// read from its data directory. Formatting: status_text.cc, status_json.cc,
// status_check.cc; directory scans: status_scan.cc; the agent: agent_socket.cc.
#include "pg/status.h"

#include <time.h>

#include <cstdlib>

#include "pg/psql.h"
#include "pg/version.h"

namespace walferry::pg {
namespace {

std::optional<std::int64_t> Num(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str()) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

double NowSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// pg_stat_replication, lags in bytes behind `current` (an LSN expression).
Status QueryReplication(Psql& psql, const std::string& current, ServerStatus& s) {
  WF_ASSIGN(auto rep,
            psql.Query("SELECT coalesce(application_name,''), coalesce(host(client_addr),'local'), "
                       "coalesce(state,''), coalesce(sync_state,''), "
                       "pg_wal_lsn_diff(" + current + ", sent_lsn)::bigint, "
                       "pg_wal_lsn_diff(" + current + ", write_lsn)::bigint, "
                       "pg_wal_lsn_diff(" + current + ", flush_lsn)::bigint, "
                       "pg_wal_lsn_diff(" + current + ", replay_lsn)::bigint "
                       "FROM pg_stat_replication ORDER BY application_name"));
  for (const auto& r : rep) {
    if (r.size() < 8) continue;
    s.replication.push_back({r[0], r[1], r[2], r[3], Num(r[4]), Num(r[5]), Num(r[6]), Num(r[7])});
  }
  return Status::Ok();
}

// What the server reports beside its archiver figures.
struct ArchiverExtras {
  std::string data_directory, module_socket;
};

// pg_stat_archiver and the archiving settings.
Result<ArchiverExtras> QueryArchiver(Psql& psql, ServerStatus& s) {
  WF_ASSIGN(auto arch, psql.Query(
                           "SELECT archived_count, coalesce(last_archived_wal,''), "
                           "coalesce(last_archived_time::text,''), failed_count, "
                           "coalesce(last_failed_wal,''), coalesce(last_failed_time::text,''), "
                           "coalesce(extract(epoch FROM now() - last_archived_time)::text, '-1'), "
                           "coalesce(extract(epoch FROM now() - last_failed_time)::text, '-1'), "
                           "current_setting('archive_mode'), current_setting('archive_command'), "
                           "coalesce(current_setting('archive_library', true), ''), "
                           "current_setting('data_directory'), "
                           "coalesce(current_setting('walferry_archive.socket', true), '') "
                           "FROM pg_stat_archiver"));
  if (!arch.empty() && arch[0].size() >= 6) {
    s.archived_count = Num(arch[0][0]).value_or(0);
    s.last_archived_wal = arch[0][1];
    s.last_archived_time = arch[0][2];
    s.failed_count = Num(arch[0][3]).value_or(0);
    s.last_failed_wal = arch[0][4];
    s.last_failed_time = arch[0][5];
  }
  ArchiverExtras x;
  if (!arch.empty() && arch[0].size() >= 13) {
    x.module_socket = arch[0][12];
    s.last_archived_age_s = std::strtod(arch[0][6].c_str(), nullptr);
    s.last_failed_age_s = std::strtod(arch[0][7].c_str(), nullptr);
    s.archive_mode = arch[0][8];
    s.archive_command = arch[0][9];
    s.archive_library = arch[0][10];
    x.data_directory = arch[0][11];
  }
  return x;
}

// A standby's receiver and replay positions.
Status QueryStandby(Psql& psql, ServerStatus& s) {
  WF_ASSIGN(auto sb, psql.Query(
                         "SELECT coalesce(pg_last_wal_receive_lsn()::text,''), "
                         "coalesce(pg_last_wal_replay_lsn()::text,''), "
                         "coalesce(pg_last_xact_replay_timestamp()::text,''), "
                         "coalesce((SELECT status FROM pg_stat_wal_receiver LIMIT 1),'')"));
  if (!sb.empty() && sb[0].size() >= 4) {
    s.receive_lsn = sb[0][0];
    s.replay_lsn = sb[0][1];
    s.replay_time = sb[0][2];
    s.wal_receiver_status = sb[0][3];
  }
  return Status::Ok();
}

// The backlog figures and push's last failure, from `pgdata` when readable.
void ReadBacklog(const std::string& pgdata, ServerStatus& s) {
  if (auto scan = ScanArchiveStatus(pgdata, NowSeconds(), s.rate_window_s); scan.ok()) {
    s.ready_count = scan->ready_count;
    s.ready_bytes = scan->ready_bytes;
    s.oldest_ready_age_s = scan->oldest_ready_age_s;
    s.written_in_window = scan->written_in_window;
    s.archived_in_window = scan->archived_in_window;
  }
  s.push_failure = ReadPushFailure(pgdata);
}

}  // namespace

Result<ServerStatus> QueryServerStatus(const ConnOptions& conn) {
  int major_hint = 0;
  if (!conn.pgdata.empty()) {
    if (auto m = DetectMajorVersion(conn.pgdata); m.ok()) major_hint = *m;
  }
  Psql psql(conn, major_hint);
  ServerStatus s;
  WF_ASSIGN(auto head, psql.Query("SELECT current_setting('server_version_num'), pg_is_in_recovery()"));
  if (head.empty() || head[0].size() < 2) {
    return Error(ErrorCode::kProtocol, "psql: unexpected answer to the version query");
  }
  WF_ASSIGN(s.major, MajorFromVersionNum(head[0][0]));
  WF_TRY(CheckSupported(s.major));
  s.in_recovery = head[0][1] == "t";
  WF_TRY(QueryReplication(psql, s.in_recovery ? "pg_last_wal_receive_lsn()" : "pg_current_wal_lsn()", s));
  WF_ASSIGN(ArchiverExtras x, QueryArchiver(psql, s));
  if (s.in_recovery) WF_TRY(QueryStandby(psql, s));
  // The backlog needs the data directory: --pgdata, else the server's own
  // data_directory when this machine can read it (status run on the server).
  const std::string pgdata = !conn.pgdata.empty() ? conn.pgdata : x.data_directory;
  if (!pgdata.empty()) ReadBacklog(pgdata, s);
  if (!s.in_recovery) {
    s.agent_socket = AgentSocketPath(conn.agent_socket, s.archive_command, x.module_socket);
    s.agent_running = AgentRunning(s.agent_socket);
  }
  return s;
}

}  // namespace walferry::pg
