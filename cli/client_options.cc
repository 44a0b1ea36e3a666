#include "cli/client_options.h"

#include <functional>
#include <string>


#include "cli/config.h"
#include "transport/net.h"
#include "transport/tls_session.h"

namespace walferry::cli {

void AddClientOptions(CLI::App* sub, ClientArgs& a) {
  AddConfigOption(sub, &a.config);
  sub->add_option("--to", a.to, "Receiver HOST:PORT (repeat, or separate by commas, for several: see --quorum)");
  sub->add_option("--cluster", a.cluster, "Cluster name (picks client-<cluster>.crt from --tls-dir)");
  sub->add_option("--tls-dir", a.tls_dir, "Directory made by `walferry tls init`");
  sub->add_flag("--insecure-loopback", a.insecure, "Plain TCP to a loopback receiver (tests and demos only)");
  sub->add_option("--retries", a.retries, "Reconnect attempts before giving up");
  sub->add_option("--tls-session-cache", a.session_cache,
                  "TLS session cache file for resumption (default ~/.cache/walferry/tls-sessions/...; off = none)");
  sub->add_option("--quorum", a.quorum,
                  "With several --to: targets that must have the file durable for success (default: all)");
  sub->add_option("--backlog-dir", a.backlog_dir,
                  "With several --to: where each target's missed files are listed (default: beside --tls-dir)");
  sub->add_option("--backlog-max", a.backlog_max, "Entries one target's backlog may hold (default 4096)")
      ->check(CLI::Range(1, 10000000));
  sub->add_option("--drain-max", a.drain_max, "Backlog entries each call ships to a target first (default 4)");
}

Result<std::vector<std::string>> ClientTargets(const ClientArgs& a) {
  std::vector<std::string> out;
  for (const auto& v : a.to) {
    std::size_t start = 0;
    while (start <= v.size()) {
      auto comma = v.find(',', start);
      std::string t = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      while (!t.empty() && t.front() == ' ') t.erase(t.begin());
      while (!t.empty() && t.back() == ' ') t.pop_back();
      if (!t.empty()) {
        for (const auto& o : out) {
          if (o == t) return Error(ErrorCode::kInvalidArgument, "--to " + t + " given twice");
        }
        out.push_back(t);
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (out.empty()) return Error(ErrorCode::kInvalidArgument, "no receiver: give --to HOST:PORT (or `to` in the config file)");
  return out;
}

Result<transport::SendOptions> ClientOptions(const ClientArgs& a) {
  WF_ASSIGN(std::vector<std::string> targets, ClientTargets(a));
  if (targets.size() != 1) {
    return Error(ErrorCode::kInvalidArgument, "this command takes one receiver, not " + std::to_string(targets.size()) +
                                                  " (--to)");
  }
  return ClientOptionsFor(a, targets[0]);
}

namespace {
Result<transport::TlsConfig> TlsFor(const ClientArgs& a, const std::string& to, const transport::Endpoint& ep) {
  transport::TlsConfig tls;
  tls.tls_dir = a.tls_dir;
  tls.cluster = a.cluster;
  tls.insecure_loopback = a.insecure;
  if (a.session_cache != "off") {
    // Without --cluster the cache is keyed by the TLS directory: two
    // directories (two clusters' certificates) never share a session, which
    // would authenticate one as the other.
    std::string key = a.cluster;
    if (key.empty()) key = "dir-" + std::to_string(std::hash<std::string>{}(a.tls_dir));
    tls.session_file = a.session_cache.empty() ? transport::DefaultSessionFile(ep.host, ep.port, key)
                                               : a.session_cache;
  }
  if (tls.tls_dir.empty() && !tls.insecure_loopback) {
    return Error(ErrorCode::kInvalidArgument, "no TLS material: give --tls-dir DIR (made by `walferry tls init`)");
  }
  if (tls.insecure_loopback && !transport::IsLoopback(ep)) {
    return Error(ErrorCode::kInvalidArgument, "--insecure-loopback is refused for non-loopback address " + to);
  }
  return tls;
}
}  // namespace

Result<pg::RemoteSpec> ClientFetchSpec(const ClientArgs& a, const std::string& to) {
  WF_ASSIGN(transport::Endpoint ep, transport::ParseEndpoint(to));
  WF_ASSIGN(transport::TlsConfig tls, TlsFor(a, to, ep));
  tls.session_file.clear();
  return pg::RemoteSpec{ep, tls, a.cluster};
}

Result<transport::SendOptions> ClientOptionsFor(const ClientArgs& a, const std::string& to) {
  WF_ASSIGN(transport::Endpoint ep, transport::ParseEndpoint(to));
  WF_ASSIGN(transport::TlsConfig tls, TlsFor(a, to, ep));
  transport::SendOptions o;
  o.connect = [ep, tls]() { return transport::Connect(ep, tls); };
  o.cluster = a.cluster;
  if (a.retries >= 0) o.max_retries = a.retries;
  return o;
}

}  // namespace walferry::cli
