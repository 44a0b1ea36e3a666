#include "cli/agent_metrics.h"

#include <iterator>

namespace walferry::cli {
namespace {

using T = MetricsRegistry::Type;

struct Family {
  const char* name;
  T type;
  const char* help;
};

constexpr Family kFamilies[] = {
    {"walferry_archive_backlog_segments", T::kGauge, "WAL files waiting to be archived (.ready) at the agent's last scan."},
    {"walferry_archive_backlog_bytes", T::kGauge, "Bytes of the .ready WAL files at the agent's last scan."},
    {"walferry_archive_oldest_ready_age_seconds", T::kGauge, "Age of the oldest .ready file (0 when none)."},
    {"walferry_agent_in_flight_transfers", T::kGauge, "Transfers to the receiver running now."},
    {"walferry_agent_queued_files", T::kGauge, "Ready files queued for shipping ahead."},
    {"walferry_archived_files_total", T::kCounter, "Files the agent made durable on the receiver."},
    {"walferry_archived_bytes_total", T::kCounter, "Raw bytes the agent made durable on the receiver."},
    {"walferry_agent_requests_total", T::kCounter, "Push requests from archive_command or the archive module."},
    {"walferry_agent_requests_hit_total", T::kCounter, "Push requests answered from what was already shipped ahead."},
    {"walferry_agent_failures_total", T::kCounter, "Failed transfers (retried, never skipped)."},
    {"walferry_agent_last_success_timestamp_seconds", T::kGauge, "Unix time of the last durable transfer (0 = none)."},
    {"walferry_agent_last_failure_timestamp_seconds", T::kGauge, "Unix time of the last failed transfer (0 = none)."},
    {"walferry_agent_start_timestamp_seconds", T::kGauge, "Unix time the agent started."},
};

}  // namespace

void DescribeAgentMetrics(MetricsRegistry& m) {
  for (const Family& f : kFamilies) m.Describe(f.name, f.type, f.help);
}

void UpdateAgentMetrics(MetricsRegistry& m, const agent::AgentStats& s, double now) {
  DescribeAgentMetrics(m);
  auto d = [](auto v) { return static_cast<double>(v); };
  const double oldest = s.oldest_ready_epoch > 0 && now > d(s.oldest_ready_epoch) ? now - d(s.oldest_ready_epoch) : 0;
  // Counters are totals kept by the agent: Set, not Add, renders them as they are.
  const double values[] = {d(s.ready_files),       d(s.ready_bytes),        oldest,
                           d(s.in_flight),         d(s.queued),             d(s.shipped_files),
                           d(s.shipped_bytes),     d(s.requests),           d(s.requests_hit),
                           d(s.failures),          d(s.last_success_epoch), d(s.last_failure_epoch),
                           d(s.started_epoch)};
  static_assert(std::size(values) == std::size(kFamilies));
  for (std::size_t i = 0; i < std::size(kFamilies); ++i) m.Set(kFamilies[i].name, {}, values[i]);
}

}  // namespace walferry::cli
