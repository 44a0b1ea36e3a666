#include "cli/client_options.h"

#include "cli/config.h"
#include "transport/net.h"
#include "transport/tls_session.h"

namespace walferry::cli {

void AddClientOptions(CLI::App* sub, ClientArgs& a) {
  AddConfigOption(sub, &a.config);
  sub->add_option("--to", a.to, "Receiver HOST:PORT");
  sub->add_option("--cluster", a.cluster, "Cluster name (picks client-<cluster>.crt from --tls-dir)");
  sub->add_option("--tls-dir", a.tls_dir, "Directory made by `walferry tls init`");
  sub->add_flag("--insecure-loopback", a.insecure, "Plain TCP to a loopback receiver (tests and demos only)");
  sub->add_option("--retries", a.retries, "Reconnect attempts before giving up");
  sub->add_option("--tls-session-cache", a.session_cache,
                  "TLS session cache file for resumption (default ~/.cache/walferry/tls-sessions/...; off = none)");
}

Result<transport::SendOptions> ClientOptions(const ClientArgs& a) {
  if (a.to.empty()) return Error(ErrorCode::kInvalidArgument, "no receiver: give --to HOST:PORT (or `to` in the config file)");
  WF_ASSIGN(transport::Endpoint ep, transport::ParseEndpoint(a.to));
  transport::TlsConfig tls;
  tls.tls_dir = a.tls_dir;
  tls.cluster = a.cluster;
  tls.insecure_loopback = a.insecure;
  if (a.session_cache != "off") {
    tls.session_file = a.session_cache.empty() ? transport::DefaultSessionFile(ep.host, ep.port, a.cluster)
                                               : a.session_cache;
  }
  if (tls.tls_dir.empty() && !tls.insecure_loopback) {
    return Error(ErrorCode::kInvalidArgument, "no TLS material: give --tls-dir DIR (made by `walferry tls init`)");
  }
  if (tls.insecure_loopback && !transport::IsLoopback(ep)) {
    return Error(ErrorCode::kInvalidArgument, "--insecure-loopback is refused for non-loopback address " + a.to);
  }
  transport::SendOptions o;
  o.connect = [ep, tls]() { return transport::Connect(ep, tls); };
  o.cluster = a.cluster;
  if (a.retries >= 0) o.max_retries = a.retries;
  return o;
}

}  // namespace walferry::cli
