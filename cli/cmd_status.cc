// `walferry status`.
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/metrics.h"
#include "cli/pg_conn_options.h"
#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/backlog.h"
#include "pg/fanout_status.h"
#include "pg/psql.h"
#include "pg/status.h"

namespace walferry::cli {
using namespace pgcmd;

namespace {

struct StatusArgs {
  bool json = false, check = false, prometheus = false;
  std::string root, config;
  std::vector<std::string> clusters;
  pg::ConnOptions conn;
  pg::Thresholds limits;
  std::string backlog_dir;         // fan-out backlog (several --to): per-target lag
  double max_target_lag_s = 900;   // --check: oldest file a target may lack
};

using Targets = std::vector<pg::TargetReport>;

// The fan-out backlog's targets (none lacking anything when no push has
// missed a file yet). Read only: status may run as another user than push
// (never create or rewrite what push owns).
Result<Targets> ReadTargets(const std::string& dir) {
  auto b = pg::Backlog::OpenForReading(dir);
  if (!b.ok() && b.error().code() == ErrorCode::kNotFound) return Targets();
  if (!b.ok()) return b.error().Wrap("backlog");
  auto r = pg::FanoutReports(*b, static_cast<double>(::time(nullptr)));
  if (!r.ok()) return r.error().Wrap("backlog");
  return r;
}

// The fan-out's targets alone (no server, no archive asked).
int TargetsOnly(const StatusArgs& a, const Targets& targets) {
  if (a.prometheus) {
    std::fputs(pg::FanoutMetrics(targets).c_str(), stdout);
  } else if (a.check) {
    auto breaches = pg::FanoutBreaches(targets, a.max_target_lag_s);
    std::size_t lacking = 0;
    for (const auto& t : targets) lacking += t.lacking;
    std::string figures = std::to_string(targets.size()) + " target(s), " + std::to_string(lacking) +
                          " file(s) lacking";
    if (!breaches.empty()) {
      std::printf("ARCHIVE CRITICAL - %s | %s\n", Join(breaches, "; ").c_str(), figures.c_str());
      return kExitFailure;
    }
    std::printf("ARCHIVE OK - %s\n", figures.c_str());
  } else if (a.json) {
    std::printf("{\"targets\":%s}\n", pg::FanoutJson(targets).c_str());
  } else {
    std::fputs(pg::FanoutText(targets).c_str(), stdout);
  }
  return kExitOk;
}

// --check (one line for monitoring) or --prometheus.
void CheckOrMetrics(StatusArgs& a, const std::optional<Targets>& targets, Context& ctx) {
  if (!a.conn.pgdata.empty()) a.conn.pgdata = Absolute(a.conn.pgdata);
  auto s = pg::QueryServerStatus(a.conn);
  if (!s.ok() && a.prometheus) return void(Fail(ctx, s.error()));
  if (s.ok()) AskAgent(*s);
  if (a.prometheus) {
    std::fputs(ServerStatusMetrics(*s).c_str(), stdout);
    if (targets) std::fputs(pg::FanoutMetrics(*targets).c_str(), stdout);
    return;
  }
  if (!s.ok()) {
    std::printf("ARCHIVE CRITICAL - cannot ask PostgreSQL: %s\n", s.error().message().c_str());
    ctx.exit_code = kExitFailure;
    return;
  }
  auto breaches = pg::CheckThresholds(*s, a.limits);
  if (targets) {
    for (auto& b : pg::FanoutBreaches(*targets, a.max_target_lag_s)) breaches.push_back(std::move(b));
  }
  std::fputs(pg::CheckSummary(*s, breaches).c_str(), stdout);
  ctx.exit_code = breaches.empty() ? kExitOk : kExitFailure;
}

// The archive's clusters under --root, with their size and last write.
Status ReadArchive(const StatusArgs& a, std::vector<pg::ClusterReport>* reports,
                   std::vector<pg::ArchiveUsage>* usage) {
  WF_ASSIGN(auto arch, OpenArchiveRoot(a.root));
  WF_ASSIGN(*reports, pg::InspectArchive(*arch, a.clusters, /*full=*/false));
  const double now = static_cast<double>(::time(nullptr));
  for (const auto& rep : *reports) usage->push_back(pg::ClusterUsage(a.root, rep.cluster, now));
  return Status::Ok();
}

// The server's state and the archive's, as text or JSON.
void FullStatus(StatusArgs& a, const std::optional<Targets>& targets, Context& ctx) {
  std::optional<pg::ServerStatus> server;
  std::vector<pg::ClusterReport> reports;
  std::vector<pg::ArchiveUsage> usage;
  bool have_archive = false;
  std::optional<Error> failure;
  const bool want_server = !a.conn.pgdata.empty() || !a.conn.host.empty() ||
                           !a.conn.port.empty() || a.root.empty();
  if (want_server) {
    if (!a.conn.pgdata.empty()) a.conn.pgdata = Absolute(a.conn.pgdata);
    auto s = pg::QueryServerStatus(a.conn);
    if (s.ok()) {
      AskAgent(*s);
      server = std::move(s).value();
    } else {
      failure = s.error();
    }
  }
  if (!a.root.empty()) {
    if (Status st = ReadArchive(a, &reports, &usage); st.ok()) {
      have_archive = true;
    } else {
      failure = st.error();
    }
  }
  const bool colour = ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
  std::string out = a.json ? pg::StatusJson(server, have_archive ? &reports : nullptr, &usage)
                           : pg::StatusText(server, have_archive ? &reports : nullptr, &usage, colour);
  if (targets) {
    if (a.json) {
      // One object: the targets go in as one more member.
      auto close = out.rfind('}');
      if (close != std::string::npos) out = out.substr(0, close) + ",\"targets\":" + pg::FanoutJson(*targets) + "}\n";
    } else {
      out += pg::FanoutText(*targets);
    }
  }
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  if (failure) Fail(ctx, *failure);
}

}  // namespace

void AddStatus(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<StatusArgs>();
  auto* c = app.add_subcommand(
      "status", "replication and archiving state of a server, and of the archive");
  c->set_help_flag("--help", "print this help");
  c->footer(
      "On the primary: pg_stat_replication (state, lag in bytes), pg_stat_archiver (last\n"
      "archived, failures) and the .ready files waiting in pg_wal/archive_status. On a\n"
      "standby: received/replayed positions. With --root: the archive's newest segment per\n"
      "cluster, any gap, size on disk and last write. Connection options as psql takes them\n"
      "(-h -p -U -d). The primary's backlog (count, bytes and age of .ready files) and its\n"
      "WAL written/archived rates over the last 5 minutes come from pg_wal/archive_status\n"
      "(--pgdata, or the server's data_directory when readable); the last failure's reason\n"
      "from walferry push's record; the agent from its socket ($WALFERRY_AGENT_SOCKET).\n"
      "--check prints one line and exits 1 past --max-backlog, --max-oldest-age or\n"
      "--max-since-success, or while archiving fails (for cron and Nagios).\n\n"
      "  walferry status --pgdata /var/lib/postgresql/15/main --json\n"
      "  walferry status --pgdata /var/lib/postgresql/15/main --check --max-backlog 8\n"
      "for a primary whose postgresql.conf has:\n"
      "  archive_command = 'walferry push %p'");
  c->add_flag("--json", a->json, "machine-readable output");
  AddPgConnOptions(c, &a->conn, "data directory (port, socket and .ready count)", "user name");
  c->add_option("--root", a->root, "archive ROOT directory (receiver side)");
  c->add_option("--cluster", a->clusters, "cluster(s) of the archive (default: all)");
  AddConfigOption(c, &a->config);
  c->add_option("--agent-socket", a->conn.agent_socket,
                "the agent's socket (default: from archive_command, walferry_archive.socket, "
                "$WALFERRY_AGENT_SOCKET, /run/walferry/agent.sock)");
  c->add_option("--backlog-dir", a->backlog_dir,
                "the fan-out backlog of push with several --to: what each target lacks (docs/fanout.md)");
  c->add_option("--max-target-lag", a->max_target_lag_s,
                "--check with --backlog-dir: seconds a target may lack a file (-1 = any)")
      ->capture_default_str();
  c->add_flag("--prometheus", a->prometheus, "the primary's figures as Prometheus text (node_exporter textfile)");
  c->add_flag("--check", a->check, "one line for monitoring (cron, Nagios); exit 1 past a threshold");
  c->add_option("--max-backlog", a->limits.max_backlog, "--check: .ready segments allowed (-1 = any)")
      ->capture_default_str();
  c->add_option("--max-oldest-age", a->limits.max_oldest_age_s, "--check: seconds the oldest .ready may wait")
      ->capture_default_str();
  c->add_option("--max-since-success", a->limits.max_since_success_s,
                "--check: seconds since the last archived segment while a backlog waits")
      ->capture_default_str();
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    std::optional<Targets> targets;
    if (!a->backlog_dir.empty()) {
      auto t = ReadTargets(a->backlog_dir);
      if (!t.ok()) return void(Fail(ctx, t.error()));
      targets = std::move(t).value();
    }
    const bool no_server = a->conn.pgdata.empty() && a->conn.host.empty() && a->conn.port.empty();
    if (targets && no_server && a->root.empty()) {
      ctx.exit_code = TargetsOnly(*a, *targets);
    } else if (a->check || a->prometheus) {
      CheckOrMetrics(*a, targets, ctx);
    } else {
      FullStatus(*a, targets, ctx);
    }
  });
}

}  // namespace walferry::cli
