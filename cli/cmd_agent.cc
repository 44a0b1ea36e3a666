// `walferry agent`: archives WAL ahead of PostgreSQL's archiver (agent/agent.h).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <algorithm>
#include <vector>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "cli/agent_metrics.h"
#include "cli/client_options.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/fanout_run.h"
#include "cli/log.h"
#include "cli/metrics.h"
#include "cli/signals.h"

namespace walferry::cli {
namespace {

struct AgentArgs {
  ClientArgs client;
  std::string pgdata;
  std::string socket;
  int parallel = 2;
  int ahead = 64;
  int rescan_ms = 2000;
  int level = 0;
  std::string log_level = "info";
  std::string metrics;  // HOST:PORT of the Prometheus endpoint; "" = none
};

// The agent's process-wide signal set-up, done once by the command (never by
// library code) before any thread starts: SIGTERM and SIGINT blocked here and
// so in every thread started after, for the main loop to take them with
// sigtimedwait on the returned set; SIGPIPE ignored, so a peer that goes away
// gives EPIPE.
sigset_t BlockStopSignals() {
  const sigset_t set = BlockSignals({SIGTERM, SIGINT});
  ::signal(SIGPIPE, SIG_IGN);
  return set;
}

// With several --to the agent does not ship ahead (its read-ahead answers
// for one receiver); it catches each target up from the fan-out backlog,
// every --rescan-ms, until SIGTERM. push ships to all targets itself.
int RunDrainer(const AgentArgs& a, const std::vector<std::string>& targets, Logger& log) {
  std::unique_ptr<pg::Backlog> backlog;
  auto tune = [&a](transport::SendOptions& o) {
    o.kind = transport::WireKind::kWal;
    o.threads = 1;
    o.in_flight = 2;
    o.level = a.level > 0 ? a.level : 1;
    o.ask_have = true;
    if (a.client.retries < 0) o.max_retries = 1;
  };
  auto o = BuildFanout(a.client, targets, tune, &backlog);
  if (!o.ok()) return ReportError(o.error());
  o->wal_dir = a.pgdata + "/pg_wal";
  o->drain_max = std::max<std::size_t>(o->drain_max, 64);
  const sigset_t set = BlockStopSignals();
  log.Log(LogLevel::kInfo, "agent: " + std::to_string(targets.size()) + " targets: draining the backlog in " +
                               backlog->dir() + " every " + std::to_string(a.rescan_ms) + " ms");
  for (;;) {
    pg::FanoutResult r = pg::DrainBacklogs(*o);
    for (const auto& t : r.targets) {
      if (t.drained > 0) {
        log.Log(LogLevel::kInfo, "agent: caught up " + std::to_string(t.drained) + " file(s) on " + t.target);
      }
    }
    timespec ts{a.rescan_ms / 1000, static_cast<long>(a.rescan_ms % 1000) * 1000000};
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig == SIGTERM || sig == SIGINT) {
      log.Log(LogLevel::kInfo, "agent: signal " + std::to_string(sig) + ", stopping");
      return kExitOk;
    }
  }
}

int RunAgent(const AgentArgs& a) {
  auto level = ParseLogLevel(a.log_level);
  if (!level.ok()) return ReportError(level.error());
  if (a.pgdata.empty()) return ReportError(Error(ErrorCode::kInvalidArgument, "agent needs --pgdata DIR"));
  auto targets = ClientTargets(a.client);
  if (!targets.ok()) return ReportError(targets.error());
  Logger log = Logger::ForStderr(*level);
  if (targets->size() > 1) {
    if (!a.metrics.empty()) {
      return ReportError(Error(ErrorCode::kInvalidArgument, "agent --metrics needs a single --to (not a fan-out)"));
    }
    return RunDrainer(a, *targets, log);
  }
  if (a.socket.empty()) return ReportError(Error(ErrorCode::kInvalidArgument, "agent needs --agent-socket PATH"));
  auto so = ClientOptions(a.client);
  if (!so.ok()) return ReportError(so.error());
  // Parallelism comes from concurrent transfers: one compression thread each.
  so->threads = 1;
  so->in_flight = 2;
  so->level = a.level > 0 ? a.level : 1;
  const sigset_t set = BlockStopSignals();
  agent::AgentOptions o;
  o.pgdata = a.pgdata;
  o.socket_path = a.socket;
  o.send = std::move(*so);
  o.parallel = a.parallel;
  o.ahead = a.ahead;
  o.rescan = std::chrono::milliseconds(a.rescan_ms);
  o.log = [&log](bool warning, const std::string& m) { log.Log(warning ? LogLevel::kWarn : LogLevel::kInfo, m); };
  auto ag = agent::Agent::Start(std::move(o));
  if (!ag.ok()) return ReportError(ag.error());
  MetricsRegistry metrics;
  DescribeAgentMetrics(metrics);
  agent::Agent* agp = ag->get();
  auto metrics_server = StartMetrics(
      a.metrics, metrics,
      [&metrics, agp] { UpdateAgentMetrics(metrics, agp->Stats(), static_cast<double>(std::time(nullptr))); }, log,
      "agent");
  if (!metrics_server.ok()) return ReportError(metrics_server.error());
  std::atomic<bool> done{false};
  std::thread signals = SignalWaiter(set, done, [&](int sig) {
    if (sig != SIGTERM && sig != SIGINT) return false;
    log.Log(LogLevel::kInfo, "agent: signal " + std::to_string(sig) + ", finishing transfers in flight");
    (*ag)->Stop();
    return true;
  });
  Status st = (*ag)->Run();
  done.store(true);
  signals.join();
  metrics_server->reset();  // its thread reads the agent: stop it first
  if (!st.ok()) return ReportError(st.error());
  return kExitOk;
}

}  // namespace

void AddAgentCommands(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<AgentArgs>();
  CLI::App* sub = app.add_subcommand(
      "agent",
      "Archive WAL ahead of PostgreSQL (runs on the primary; push --agent-socket asks it)\n"
      "  walferry agent --pgdata /var/lib/postgresql/15/main --agent-socket /run/walferry/agent.sock \\\n"
      "      --to standby:7420 --tls-dir /etc/walferry/tls");
  AddClientOptions(sub, args->client);
  sub->add_option("--pgdata", args->pgdata, "PostgreSQL data directory (its pg_wal/archive_status is watched)");
  sub->add_option("--agent-socket", args->socket,
                  "Unix socket to serve push on (its directory must be mode 0700, owned by this user)");
  sub->add_option("--parallel", args->parallel, "Transfers at once (default 2)")->check(CLI::Range(1, 64));
  sub->add_option("--ahead", args->ahead, "Ready files shipped ahead at most (default 64)")->check(CLI::Range(1, 100000));
  sub->add_option("--rescan-ms", args->rescan_ms, "Full rescan period besides inotify (default 2000)")
      ->check(CLI::Range(10, 3600 * 1000));
  sub->add_option("-l,--level", args->level, "Compression level (default zstd 1)");
  AddLogLevelOption(sub, &args->log_level);
  sub->add_option("--metrics", args->metrics,
                  "HOST:PORT for Prometheus text metrics at /metrics (e.g. 127.0.0.1:9421)");
  sub->callback([sub, args, &ctx] {
    if (Status st = ApplyConfig(*sub, args->client.config); !st.ok()) {
      ctx.exit_code = ReportError(st.error());
      return;
    }
    ctx.exit_code = RunAgent(*args);
  });
}

}  // namespace walferry::cli
