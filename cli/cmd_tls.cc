// `walferry tls init DIR [--cluster NAME ...] [--server-name NAME ...] [--force]`
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "transport/net.h"

namespace walferry::cli {
namespace {

struct TlsInitOptions {
  std::string dir;
  std::vector<std::string> clusters;
  std::vector<std::string> server_names;
  bool force = false;
};

int RunTlsInit(const TlsInitOptions& o) {
  Status st = transport::InitTlsDir(o.dir, o.clusters, o.server_names, o.force);
  if (!st.ok()) return ReportError(st.error());
  std::vector<std::string> clusters = o.clusters;
  if (clusters.empty()) clusters.push_back("main");
  std::printf("TLS files in %s:\n", o.dir.c_str());
  std::printf("  receiver (standby): ca.crt server.crt server.key\n");
  for (const auto& c : clusters) {
    std::printf("  sender for cluster %s (primary): ca.crt client-%s.crt client-%s.key\n",
                c.c_str(), c.c_str(), c.c_str());
  }
  std::printf("  ca.key signs new certificates (walferry tls init %s --cluster NAME);"
              " keep it off the servers if you can\n", o.dir.c_str());
  return kExitOk;
}

}  // namespace

void AddTlsCommands(CLI::App& app, Context& ctx) {
  auto* tls = app.add_subcommand("tls", "TLS certificates for serve/push/send");
  tls->require_subcommand(1);
  auto opts = std::make_shared<TlsInitOptions>();
  auto* init = tls->add_subcommand(
      "init", "Create a CA, a server certificate and one client certificate per cluster");
  init->add_option("dir", opts->dir, "Directory to create (mode 0700)")->required();
  init->add_option("--cluster", opts->clusters,
                   "Cluster name for a client certificate (repeatable; default: main)");
  init->add_option("--server-name", opts->server_names,
                   "Extra host name or IP address the receiver is reached by (repeatable; "
                   "localhost, 127.0.0.1, ::1 and this host's name are always included)");
  init->add_flag("--force", opts->force, "Replace existing files (and the CA)");
  init->callback([opts, &ctx] { ctx.exit_code = RunTlsInit(*opts); });
}

}  // namespace walferry::cli
