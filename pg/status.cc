#include "pg/status.h"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>

#include "core/fd.h"
#include "core/format.h"
#include "pg/process.h"
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

std::string JsonNum(const std::optional<std::int64_t>& v) {
  return v ? std::to_string(*v) : "null";
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

double NowSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double StatTime(const struct timespec& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

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
  std::string data_directory, module_socket;
  if (!arch.empty() && arch[0].size() >= 13) {
    module_socket = arch[0][12];
    s.last_archived_age_s = std::strtod(arch[0][6].c_str(), nullptr);
    s.last_failed_age_s = std::strtod(arch[0][7].c_str(), nullptr);
    s.archive_mode = arch[0][8];
    s.archive_command = arch[0][9];
    s.archive_library = arch[0][10];
    data_directory = arch[0][11];
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
  // The backlog needs the data directory: --pgdata, else the server's own
  // data_directory when this machine can read it (status run on the server).
  const std::string pgdata = !conn.pgdata.empty() ? conn.pgdata : data_directory;
  if (!pgdata.empty()) {
    if (auto scan = ScanArchiveStatus(pgdata, NowSeconds(), s.rate_window_s); scan.ok()) {
      s.ready_count = scan->ready_count;
      s.ready_bytes = scan->ready_bytes;
      s.oldest_ready_age_s = scan->oldest_ready_age_s;
      s.written_in_window = scan->written_in_window;
      s.archived_in_window = scan->archived_in_window;
    }
    s.push_failure = ReadPushFailure(pgdata);
  }
  if (!s.in_recovery) {
    s.agent_socket = AgentSocketPath(conn.agent_socket, s.archive_command, module_socket);
    s.agent_running = AgentRunning(s.agent_socket);
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

Result<ArchiveStatusScan> ScanArchiveStatus(const std::string& pgdata, double now, int window_s) {
  const std::string dir = pgdata + "/pg_wal/archive_status";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoError(errno, "open " + dir);
  ArchiveStatusScan scan;
  const double since = now - window_s;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    const bool ready = name.size() > 6 && name.ends_with(".ready");
    const bool done = name.size() > 5 && name.ends_with(".done");
    if (!ready && !done) continue;
    struct stat st{};
    if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;  // archived or removed meanwhile
    const double created = StatTime(st.st_mtim);
    const std::string wal = name.substr(0, name.rfind('.'));
    const bool segment = wal.size() == 24;  // not .history / .backup files
    if (segment && created >= since) ++scan.written_in_window;
    if (ready) {
      ++scan.ready_count;
      struct stat ws{};
      if (::stat((pgdata + "/pg_wal/" + wal).c_str(), &ws) == 0) scan.ready_bytes += ws.st_size;
      const double age = now - created;
      if (age > scan.oldest_ready_age_s) scan.oldest_ready_age_s = age < 0 ? 0 : age;
    } else if (segment && StatTime(st.st_ctim) >= since) {
      ++scan.archived_in_window;
    }
  }
  ::closedir(d);
  return scan;
}

std::string AgentSocketPath(const std::string& explicit_path, const std::string& archive_command,
                            const std::string& module_socket) {
  if (!explicit_path.empty()) return explicit_path;
  if (archive_command.find("walferry") != std::string::npos) {
    // "... push %p --agent-socket PATH ..." or "--agent-socket=PATH", maybe quoted.
    std::string_view cmd = archive_command;
    for (std::string_view opt : {"--agent-socket=", "--agent-socket "}) {
      auto p = cmd.find(opt);
      if (p == std::string_view::npos) continue;
      std::string_view rest = cmd.substr(p + opt.size());
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      char quote = !rest.empty() && (rest.front() == '\'' || rest.front() == '"') ? rest.front() : 0;
      if (quote) rest.remove_prefix(1);
      auto end = rest.find(quote ? quote : ' ');
      std::string path(rest.substr(0, end));
      if (!path.empty()) return path;
    }
  }
  if (!module_socket.empty()) return module_socket;
  const char* env = std::getenv("WALFERRY_AGENT_SOCKET");
  return env && *env ? env : "/run/walferry/agent.sock";
}

bool AgentRunning(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

namespace {

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

// A failure is current when PostgreSQL's last archiving event is a failure.
bool FailingNow(const ServerStatus& s) {
  return s.last_failed_age_s >= 0 && (s.last_archived_age_s < 0 || s.last_failed_age_s < s.last_archived_age_s);
}

struct Paint {
  bool on;
  std::string operator()(const std::string& text, const char* code) const {
    return on ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
  }
};
constexpr const char* kGreen = "32";
constexpr const char* kYellow = "33";
constexpr const char* kRed = "31";
constexpr const char* kBold = "1";

}  // namespace

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

ArchiveUsage ClusterUsage(const std::string& root, const std::string& cluster, double now) {
  ArchiveUsage u;
  double newest = -1;
  for (const char* sub : {"wal", "files"}) {
    const std::string dir = root + "/" + cluster + "/" + sub;
    DIR* d = ::opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      struct stat st{};
      if (::lstat((dir + "/" + e->d_name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      u.bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
      newest = std::max(newest, StatTime(st.st_mtim));
    }
    ::closedir(d);
  }
  if (newest >= 0) u.last_write_age_s = std::max(0.0, now - newest);
  return u;
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
      j += "]";
      if (usage && i < usage->size()) {
        j += ",\"bytes_on_disk\":" + std::to_string((*usage)[i].bytes) +
             ",\"last_write_age_seconds\":" + JsonDouble((*usage)[i].last_write_age_s);
      }
      j += "}";
    }
    j += "]";
  }
  return j + "}\n";
}

std::string StatusText(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive,
                       const std::vector<ArchiveUsage>* usage, bool colour) {
  Paint paint{colour};
  std::string t;
  if (server) {
    const ServerStatus& s = *server;
    t += paint("PostgreSQL " + std::to_string(s.major) + " " + (s.in_recovery ? "standby" : "primary"), kBold) + "\n";
    if (s.in_recovery) {
      const bool streaming = s.wal_receiver_status == "streaming";
      t += "  WAL receiver:  " + paint(OrDash(s.wal_receiver_status), streaming ? kGreen : kYellow) +
           ", received up to " + OrDash(s.receive_lsn) + ", replayed up to " + OrDash(s.replay_lsn) + "\n";
      t += "  last replayed transaction: " + OrDash(s.replay_time) + "\n";
    } else {
      // Archiving.
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
      t += "  agent:         " +
           (s.agent_running ? paint("running", kGreen) + " (" + s.agent_socket + ")"
                            : "not running (no agent socket at " + s.agent_socket + "; push works alone)") +
           "\n";
      if (!s.agent.empty()) {
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
      }
    }
    t += "  standbys:      " + std::to_string(s.replication.size()) + "\n";
    for (const auto& r : s.replication) {
      const bool streaming = r.state == "streaming";
      t += "    " + OrDash(r.application_name) + " (" + r.client_addr + "): " +
           paint(OrDash(r.state), streaming ? kGreen : kYellow) + ", " + OrDash(r.sync_state) +
           ", lag sent " + (r.sent_lag ? Bytes(static_cast<double>(*r.sent_lag)) : "-") + ", replayed " +
           (r.replay_lag ? Bytes(static_cast<double>(*r.replay_lag)) : "-") + "\n";
    }
  }
  if (archive) {
    for (std::size_t i = 0; i < archive->size(); ++i) {
      const ClusterReport& c = (*archive)[i];
      t += paint("archive cluster " + c.cluster, kBold) + "\n";
      t += "  newest segment: " + OrDash(c.newest_segment) + " (" + std::to_string(c.wal_files) + " WAL file(s), " +
           std::to_string(c.other_files) + " other file(s))\n";
      if (usage && i < usage->size()) {
        const ArchiveUsage& u = (*usage)[i];
        t += "  size on disk:   " + Bytes(static_cast<double>(u.bytes)) + ", last write " +
             (u.last_write_age_s < 0 ? std::string("-") : Age(u.last_write_age_s) + " ago") + "\n";
      }
      if (c.gaps.empty()) {
        t += "  holes:          " + paint("none", kGreen) + "\n";
      } else {
        for (const auto& g : c.gaps) t += "  hole:           " + paint("missing " + g, kRed) + "\n";
      }
      for (const auto& p : c.problems) t += "  problem:        " + paint(p, kRed) + "\n";
      for (const auto& q : c.quarantined) t += "  quarantined: " + paint(q, kYellow) + "\n";
    }
    if (archive->empty()) t += "archive: no clusters yet\n";
  }
  return t;
}

}  // namespace walferry::pg
