#include "pg/psql.h"

#include "core/fd.h"
#include "pg/process.h"

namespace walferry::pg {
namespace {

constexpr char kSep = '\x1f';

std::vector<std::vector<std::string>> Rows(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  for (const std::string& line : Split(out, '\n')) {
    if (!line.empty()) rows.push_back(Split(line, kSep));
  }
  return rows;
}

}  // namespace

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

Psql::Psql(const ConnOptions& c, int major) {
  args_ = {FindPgProgram("psql", major, c.pgbin), "-X", "-A", "-t", "-q", "-w", "-F",
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
  target_ = (host.empty() ? "default socket" : host) + (port.empty() ? "" : " port " + port);
}

Result<std::vector<std::vector<std::string>>> Psql::Query(const std::string& sql) const {
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

Result<std::string> Psql::Value(const std::string& sql) const {
  WF_ASSIGN(auto rows, Query(sql));
  if (rows.empty() || rows[0].empty()) return std::string();
  return rows[0][0];
}

}  // namespace walferry::pg
