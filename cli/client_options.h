// Options shared by the commands that talk to a receiver (push, send, agent).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "pg/archive_ops.h"
#include "transport/sender.h"

namespace walferry::cli {

struct ClientArgs {
  std::string config;
  std::vector<std::string> to;  // --to, repeatable; each value may list several, comma-separated
  std::string cluster;
  std::string tls_dir;
  bool insecure = false;
  int retries = -1;
  std::string session_cache;  // "" = default file; "off" = no resumption
  // Fan-out (several --to; docs/fanout.md).
  std::size_t quorum = 0;       // targets that must be durable; 0 = all
  std::string backlog_dir;      // "" = pg::DefaultBacklogDir(tls_dir)
  std::size_t backlog_max = 4096;
  std::size_t drain_max = 4;    // backlog entries per target per call
};

void AddClientOptions(CLI::App* sub, ClientArgs& a);

// Builds the sender options shared by push and send; errors are usage errors.
// Exactly one target must be given (kInvalidArgument otherwise).
Result<transport::SendOptions> ClientOptions(const ClientArgs& a);

// The targets --to names (comma-separated values split, duplicates refused).
Result<std::vector<std::string>> ClientTargets(const ClientArgs& a);
// Sender options for one target of `a` (HOST:PORT).
Result<transport::SendOptions> ClientOptionsFor(const ClientArgs& a, const std::string& to);
// How to read from one target of `a` (FETCH), for the fan-out's catch-up.
Result<pg::RemoteSpec> ClientFetchSpec(const ClientArgs& a, const std::string& to);

}  // namespace walferry::cli
