// The agent's figures (agent::AgentStats) as Prometheus series in the same
// registry and endpoint `serve --metrics` uses (cli/metrics.h): backlog seen
// at the last scan, transfers in flight and queued, shipped files and bytes,
// requests and read-ahead hits, failures, last success/failure times.
#pragma once

#include "agent/agent.h"
#include "cli/metrics.h"

namespace walferry::cli {

// Declares the agent's families (so a first scrape lists them all).
void DescribeAgentMetrics(MetricsRegistry& m);
// Sets every agent series from `s` (`now`: Unix seconds, for the oldest .ready age).
void UpdateAgentMetrics(MetricsRegistry& m, const agent::AgentStats& s, double now);

}  // namespace walferry::cli
