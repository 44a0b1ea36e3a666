// Options shared by the commands that talk to a receiver (push, send, agent).
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "core/result.h"
#include "transport/sender.h"

namespace walferry::cli {

struct ClientArgs {
  std::string config;
  std::string to;
  std::string cluster;
  std::string tls_dir;
  bool insecure = false;
  int retries = -1;
  std::string session_cache;  // "" = default file; "off" = no resumption
};

void AddClientOptions(CLI::App* sub, ClientArgs& a);

// Builds the sender options shared by push and send; errors are usage errors.
Result<transport::SendOptions> ClientOptions(const ClientArgs& a);

}  // namespace walferry::cli
