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
  std::vector<std::string> renew;
  std::vector<std::string> revoke;
  bool force = false;
};

int RunTlsInit(const TlsInitOptions& o) {
  if (!o.renew.empty() || !o.revoke.empty()) {
    for (const auto& r : o.revoke) {
      auto serial = transport::RevokeTlsClient(o.dir, r);
      if (!serial.ok()) return ReportError(serial.error());
      std::printf("revoked client-%s.crt (serial %s): %s/crl.pem updated; copy it to the receiver's TLS "
                  "directory and send the receiver SIGHUP\n", r.c_str(), serial->c_str(), o.dir.c_str());
    }
    for (const auto& r : o.renew) {
      Status rs = transport::RenewTlsCert(o.dir, r);
      if (!rs.ok()) return ReportError(rs.error());
      std::string base = r == "server" ? "server" : "client-" + r;
      std::printf("renewed %s/%s.crt and %s.key (%s)\n", o.dir.c_str(), base.c_str(), base.c_str(),
                  r == "server" ? "send the receiver SIGHUP to use it" : "copy them to the sender");
    }
    if (o.clusters.empty()) return kExitOk;
  }
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
  init->add_option("--renew", opts->renew,
                   "Replace the certificate and key of \"server\" or of a cluster with new ones from the same CA "
                   "(repeatable)");
  init->add_option("--revoke", opts->revoke,
                   "Revoke a cluster's client certificate: add it to DIR/crl.pem, which a receiver reloads on "
                   "SIGHUP (repeatable)");
  init->callback([opts, &ctx] { ctx.exit_code = RunTlsInit(*opts); });
}

}  // namespace walferry::cli
