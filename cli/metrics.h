// Prometheus text metrics (exposition format 0.0.4) for the long-running
// commands: a small registry of counters and gauges, and an HTTP endpoint
// (`--metrics HOST:PORT`, GET /metrics) that renders it. `serve` feeds the
// registry from its event lines (ObserveServeEvent); the agent can use the
// same registry and endpoint.
//
// Thread-safety: MetricsRegistry is safe from any thread (one mutex).
// MetricsServer runs one thread that answers requests one at a time.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/fd.h"
#include "core/result.h"
#include "cli/log.h"

namespace walferry::cli {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  enum class Type { kCounter, kGauge };
  // Declares a family (once; later calls keep the first help text).
  void Describe(const std::string& name, Type type, const std::string& help);
  void Add(const std::string& name, const MetricLabels& labels, double delta);  // counter
  void Set(const std::string& name, const MetricLabels& labels, double value);  // gauge
  // The exposition text: # HELP, # TYPE, then one line per series, sorted.
  std::string Render() const;

 private:
  struct Family {
    Type type = Type::kCounter;
    std::string help;
    std::map<std::string, double> series;  // rendered labels -> value
  };
  static std::string LabelText(const MetricLabels& labels);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Counts one `transport::Server` event line into `m` (see ServeEventLevel for
// the lines): transfers by cluster and outcome, raw and wire bytes, bytes
// served to `get`, refused connections, last transfer time.
void ObserveServeEvent(MetricsRegistry& m, std::string_view line, double now);
// Declares the receiver's families so that a scrape shows them before the first event.
void DescribeServeMetrics(MetricsRegistry& m);

// Refreshes, per cluster directory under `root`, walferry_archive_bytes and
// walferry_archive_last_write_timestamp_seconds (a walk of wal/ and files/).
void UpdateArchiveGauges(MetricsRegistry& m, const std::string& root);

}  // namespace walferry::cli
namespace walferry::pg { struct ServerStatus; }
namespace walferry::cli {

// The primary's archiving figures of `walferry status` as exposition text
// (`walferry status --prometheus`, e.g. for node_exporter's textfile
// collector): backlog segments/bytes, oldest .ready age, rates, archiver
// counters, seconds since the last success, whether archiving fails now and
// whether the agent runs.
std::string ServerStatusMetrics(const pg::ServerStatus& s);

class MetricsServer {
 public:
  // Binds HOST:PORT (port 0 = any) and starts answering GET /metrics with
  // `before_render` (may be empty: refreshes gauges) then registry.Render().
  // Other paths get 404, other methods 405, malformed requests 400.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& host_port, MetricsRegistry& registry,
                                                      std::function<void()> before_render);
  ~MetricsServer();  // stops the thread
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  int port() const { return port_; }

 private:
  MetricsServer(UniqueFd fd, int port, MetricsRegistry& r, std::function<void()> before)
      : fd_(std::move(fd)), port_(port), registry_(r), before_(std::move(before)) {}
  void Loop();
  void Answer(int client);
  UniqueFd fd_;
  int port_;
  MetricsRegistry& registry_;
  std::function<void()> before_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The endpoint of a long-running command (`who`: "serve", "agent"): none
// when `host_port` is empty; else started and logged as
// "WHO: metrics on http://HOST:PORT/metrics". Errors of MetricsServer::Start.
Result<std::unique_ptr<MetricsServer>> StartMetrics(const std::string& host_port, MetricsRegistry& registry,
                                                    std::function<void()> before_render, Logger& log,
                                                    const std::string& who);

// The endpoint of a long-running command (`who`: "serve", "agent"): none
// when `host_port` is empty; else started and logged as
// "WHO: metrics on http://HOST:PORT/metrics". Errors of MetricsServer::Start.
Result<std::unique_ptr<MetricsServer>> StartMetrics(const std::string& host_port, MetricsRegistry& registry,
                                                    std::function<void()> before_render, Logger& log,
                                                    const std::string& who);

}  // namespace walferry::cli
