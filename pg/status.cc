#include "pg/status.h"

#include <dirent.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/fd.h"
#include "pg/process.h"
#include "pg/version.h"

namespace walferry::pg {
namespace {

constexpr char kSep = '\x1f';

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  for (;;) {
    std::size_t n = s.find(sep, pos);
    out.emplace_back(s.substr(pos, n == std::string_view::npos ? s.npos : n - pos));
    if (n == std::string_view::npos) break;
    pos = n + 1;
  }
  return out;
}

std::vector<std::vector<std::string>> Rows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : Split(out, '\n')) {
    if (!line.empty()) rows.push_back(Split(line, kSep));
  }
  return rows;
}

std::optional<std::int64_t> Num(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str()) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

class Psql {
 public:
  explicit Psql(const ConnOptions& c, int major) {
    args_ = {FindPgProgram("psql", major, c.pgbin), "-X", "-A", "-t", "-q", "-F",
             std::string(1, kSep), "-v", "ON_ERROR_STOP=1"};
    std::string host = c.host, port = c.port;
    if (!c.pgdata.empty() && (host.empty() || port.empty())) {
      // postmaster.pid: pid, datadir, start time, port, socket dir, listen address, ...
      if (auto pid = ReadSmallFile(c.pgdata + "/postmaster.pid", 4096); pid.ok()) {
        auto lines = Split(*pid, '\n');
        if (port.empty() && lines.size() > 3) port = lines[3];
        if (host.empty() && lines.size() > 4) {
          host = lines[4];
          if (host.empty() && lines.size() > 5) host = lines[5] == "*" ? "localhost" : lines[5];
        }
      }
    }
    if (!host.empty()) args_.insert(args_.end(), {"-h", host});
    if (!port.empty()) args_.insert(args_.end(), {"-p", port});
    if (!c.user.empty()) args_.insert(args_.end(), {"-U", c.user});
    args_.insert(args_.end(), {"-d", c.dbname.empty() ? "postgres" : c.dbname});
  }
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) {
    auto argv = args_;
    argv.insert(argv.end(), {"-c", sql});
    WF_ASSIGN(RunResult r, Run(argv));
    if (r.exit_code != 0) {
      std::string msg = r.err;
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
      return Error(ErrorCode::kNetwork, "psql: " + msg);
    }
    return Rows(r.out);
  }

 private:
  std::vector<std::string> args_;
};

std::string JsonNum(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "null";
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }
std::string LagText(const std::optional<std::int64_t>& v) { return v ? std::to_string(*v) : "-"; }

}  // namespace

Result<std::int64_t> CountReady(const std::string& pgdata) {
  std::string dir = pgdata + "/pg_wal/archive_status";
  UniqueDir d(::opendir(dir.c_str()));
  if (!d) return ErrnoError(errno, "open " + dir);
  std::int64_t n = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view name = e->d_name;
    if (name.size() > 6 && name.ends_with(".ready")) ++n;
  }
  return n;
}

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
  const std::string current =
      s.in_recovery ? "pg_last_wal_receive_lsn()" : "pg_current_wal_lsn()";
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
  WF_ASSIGN(auto arch, psql.Query(
                           "SELECT archived_count, coalesce(last_archived_wal,''), "
                           "coalesce(last_archived_time::text,''), failed_count, "
                           "coalesce(last_failed_wal,''), coalesce(last_failed_time::text,'') "
                           "FROM pg_stat_archiver"));
  if (!arch.empty() && arch[0].size() >= 6) {
    s.archived_count = Num(arch[0][0]).value_or(0);
    s.last_archived_wal = arch[0][1];
    s.last_archived_time = arch[0][2];
    s.failed_count = Num(arch[0][3]).value_or(0);
    s.last_failed_wal = arch[0][4];
    s.last_failed_time = arch[0][5];
  }
  if (s.in_recovery) {
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
  }
  if (!conn.pgdata.empty()) {
    if (auto n = CountReady(conn.pgdata); n.ok()) s.ready_count = *n;
  }
  return s;
}

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
                       const std::vector<ClusterReport>* archive) {
  std::string j = "{";
  bool first = true;
  auto field = [&](const std::string& k) {
    if (!first) j += ",";
    first = false;
    j += JsonString(k) + ":";
  };
  if (server) {
    const ServerStatus& s = *server;
    field("server");
    j += "{\"major\":" + std::to_string(s.major) +
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
         ",\"failed_count\":" + std::to_string(s.failed_count) +
         ",\"last_failed_wal\":" + JsonString(s.last_failed_wal) +
         ",\"last_failed_time\":" + JsonString(s.last_failed_time) + "}";
    j += ",\"ready_count\":" + (s.ready_count >= 0 ? std::to_string(s.ready_count) : "null");
    if (s.in_recovery) {
      j += ",\"receive_lsn\":" + JsonString(s.receive_lsn) +
           ",\"replay_lsn\":" + JsonString(s.replay_lsn) +
           ",\"replay_time\":" + JsonString(s.replay_time) +
           ",\"wal_receiver_status\":" + JsonString(s.wal_receiver_status);
    }
    j += "}";
  }
  if (archive) {
    field("archive");
    j += "[";
    for (std::size_t i = 0; i < archive->size(); ++i) {
      const ClusterReport& c = (*archive)[i];
      if (i) j += ",";
      j += "{\"cluster\":" + JsonString(c.cluster) + ",\"wal_files\":" +
           std::to_string(c.wal_files) + ",\"other_files\":" + std::to_string(c.other_files) +
           ",\"segment_size\":" + std::to_string(c.segment_size) +
           ",\"newest_segment\":" + JsonString(c.newest_segment) + ",\"gaps\":[";
      for (std::size_t g = 0; g < c.gaps.size(); ++g) j += (g ? "," : "") + JsonString(c.gaps[g]);
      j += "],\"problems\":[";
      for (std::size_t p = 0; p < c.problems.size(); ++p) {
        j += (p ? "," : "") + JsonString(c.problems[p]);
      }
      j += "],\"quarantined\":[";
      for (std::size_t q = 0; q < c.quarantined.size(); ++q) {
        j += (q ? "," : "") + JsonString(c.quarantined[q]);
      }
      j += "]}";
    }
    j += "]";
  }
  return j + "}\n";
}

std::string StatusText(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive) {
  std::string t;
  if (server) {
    const ServerStatus& s = *server;
    t += "PostgreSQL " + std::to_string(s.major) + " " + (s.in_recovery ? "standby" : "primary") + "\n";
    if (s.in_recovery) {
      t += "  received up to " + OrDash(s.receive_lsn) + ", replayed up to " + OrDash(s.replay_lsn) +
           " (last replayed transaction " + OrDash(s.replay_time) + "), WAL receiver " +
           OrDash(s.wal_receiver_status) + "\n";
    }
    t += "  replication: " + std::to_string(s.replication.size()) + " standby(s)\n";
    for (const auto& r : s.replication) {
      t += "    " + OrDash(r.application_name) + " from " + r.client_addr + ": " + r.state +
           " (" + OrDash(r.sync_state) + "), lag bytes sent " + LagText(r.sent_lag) + " write " +
           LagText(r.write_lag) + " flush " + LagText(r.flush_lag) + " replay " +
           LagText(r.replay_lag) + "\n";
    }
    t += "  archiver: " + std::to_string(s.archived_count) + " archived (last " +
         OrDash(s.last_archived_wal) + " at " + OrDash(s.last_archived_time) + "), " +
         std::to_string(s.failed_count) + " failed";
    if (s.failed_count > 0) t += " (last " + OrDash(s.last_failed_wal) + " at " + OrDash(s.last_failed_time) + ")";
    t += "\n";
    if (s.ready_count >= 0) {
      t += "  waiting to be archived: " + std::to_string(s.ready_count) + " segment(s) (.ready)\n";
    }
  }
  if (archive) {
    for (const ClusterReport& c : *archive) {
      t += "archive cluster " + c.cluster + ": " + std::to_string(c.wal_files) + " WAL file(s), " +
           std::to_string(c.other_files) + " other file(s), newest segment " +
           OrDash(c.newest_segment) + "\n";
      if (c.gaps.empty()) {
        t += "  no gaps\n";
      } else {
        for (const auto& g : c.gaps) t += "  missing " + g + "\n";
      }
      for (const auto& p : c.problems) t += "  problem: " + p + "\n";
      for (const auto& q : c.quarantined) t += "  quarantined: " + q + "\n";
    }
    if (archive->empty()) t += "archive: no clusters yet\n";
  }
  return t;
}

}  // namespace walferry::pg
