#include "cli/metrics.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli/http_request.h"
#include "pg/status.h"
#include "transport/net.h"

namespace walferry::cli {
namespace {

std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string Value(double v) {
  if (std::isnan(v)) return "NaN";
  char buf[48];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.6f", v);
  }
  return buf;
}

// The value of " key=VALUE" in an event line; "" when absent.
std::string Field(std::string_view line, std::string_view key) {
  std::string pat = " " + std::string(key) + "=";
  auto p = line.find(pat);
  if (p == std::string_view::npos) return "";
  p += pat.size();
  auto e = line.find_first_of(" :", p);
  return std::string(line.substr(p, e == std::string_view::npos ? std::string_view::npos : e - p));
}

}  // namespace

void MetricsRegistry::Describe(const std::string& name, Type type, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = families_.try_emplace(name);
  if (fresh) {
    it->second.type = type;
    it->second.help = help;
  }
}

std::string MetricsRegistry::LabelText(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string t = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    t += (i ? "," : "") + labels[i].first + "=\"" + Escape(labels[i].second) + "\"";
  }
  return t + "}";
}

void MetricsRegistry::Add(const std::string& name, const MetricLabels& labels, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  families_[name].series[LabelText(labels)] += delta;
}

void MetricsRegistry::Set(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  families_[name].series[LabelText(labels)] = value;
}

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string t;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) t += "# HELP " + name + " " + f.help + "\n";
    t += "# TYPE " + name + (f.type == Type::kCounter ? " counter\n" : " gauge\n");
    for (const auto& [labels, v] : f.series) t += name + labels + " " + Value(v) + "\n";
  }
  return t;
}

void DescribeServeMetrics(MetricsRegistry& m) {
  using T = MetricsRegistry::Type;
  m.Describe("walferry_receiver_transfers_total", T::kCounter,
             "Transfers ended, by cluster and outcome (placed, identical, error).");
  m.Describe("walferry_received_bytes_total", T::kCounter, "Raw bytes of files made durable, by cluster.");
  m.Describe("walferry_received_wire_bytes_total", T::kCounter,
             "Compressed bytes received for files made durable, by cluster.");
  m.Describe("walferry_receiver_fetched_bytes_total", T::kCounter, "Raw bytes sent to `walferry get`, by cluster.");
  m.Describe("walferry_receiver_refused_connections_total", T::kCounter,
             "Connections refused (TLS handshake, certificate, too many connections).");
  m.Describe("walferry_receiver_last_transfer_timestamp_seconds", T::kGauge,
             "Unix time of the last durable transfer, by cluster.");
}

void ObserveServeEvent(MetricsRegistry& m, std::string_view line, double now) {
  if (line.find("refused a connection") != std::string_view::npos ||
      line.find("too many connections") != std::string_view::npos) {
    m.Add("walferry_receiver_refused_connections_total", {}, 1);
    return;
  }
  std::string cluster = Field(line, "cluster");
  if (cluster.empty() || line.find(" name=") == std::string_view::npos) return;
  std::string bytes = Field(line, "bytes");
  if (line.find(" error=") != std::string_view::npos) {
    m.Add("walferry_receiver_transfers_total", {{"cluster", cluster}, {"outcome", "error"}}, 1);
  } else if (line.find(" sent bytes=") != std::string_view::npos) {
    m.Add("walferry_receiver_fetched_bytes_total", {{"cluster", cluster}}, std::strtod(bytes.c_str(), nullptr));
  } else {
    const char* outcome = line.find(" placed bytes=") != std::string_view::npos      ? "placed"
                          : line.find(" identical bytes=") != std::string_view::npos ? "identical"
                                                                                     : nullptr;
    if (!outcome) return;
    m.Add("walferry_receiver_transfers_total", {{"cluster", cluster}, {"outcome", outcome}}, 1);
    m.Add("walferry_received_bytes_total", {{"cluster", cluster}}, std::strtod(bytes.c_str(), nullptr));
    m.Add("walferry_received_wire_bytes_total", {{"cluster", cluster}},
          std::strtod(Field(line, "wire").c_str(), nullptr));
    m.Set("walferry_receiver_last_transfer_timestamp_seconds", {{"cluster", cluster}}, now);
  }
}

void UpdateArchiveGauges(MetricsRegistry& m, const std::string& root) {
  using T = MetricsRegistry::Type;
  m.Describe("walferry_archive_bytes", T::kGauge, "Bytes on disk of the archive, by cluster.");
  m.Describe("walferry_archive_last_write_timestamp_seconds", T::kGauge,
             "Unix time of the newest file in the archive, by cluster.");
  DIR* d = ::opendir(root.c_str());
  if (!d) return;
  std::vector<std::string> clusters;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.' && e->d_type == DT_DIR) clusters.emplace_back(e->d_name);
  }
  ::closedir(d);
  const double now = static_cast<double>(::time(nullptr));
  for (const auto& c : clusters) {
    pg::ArchiveUsage u = pg::ClusterUsage(root, c, now);
    m.Set("walferry_archive_bytes", {{"cluster", c}}, static_cast<double>(u.bytes));
    if (u.last_write_age_s >= 0) {
      m.Set("walferry_archive_last_write_timestamp_seconds", {{"cluster", c}}, now - u.last_write_age_s);
    }
  }
}

std::string ServerStatusMetrics(const pg::ServerStatus& s) {
  using T = MetricsRegistry::Type;
  MetricsRegistry m;
  auto gauge = [&](const std::string& name, const std::string& help, double v) {
    m.Describe(name, T::kGauge, help);
    m.Set(name, {}, v);
  };
  auto counter = [&](const std::string& name, const std::string& help, double v) {
    m.Describe(name, T::kCounter, help);
    m.Set(name, {}, v);
  };
  gauge("walferry_server_in_recovery", "1 on a standby, 0 on a primary.", s.in_recovery ? 1 : 0);
  counter("walferry_archived_segments_total", "pg_stat_archiver.archived_count.", static_cast<double>(s.archived_count));
  counter("walferry_archive_failures_total", "pg_stat_archiver.failed_count.", static_cast<double>(s.failed_count));
  if (s.last_archived_age_s >= 0) {
    gauge("walferry_archive_last_success_age_seconds", "Seconds since PostgreSQL last archived a file.",
          s.last_archived_age_s);
  }
  const bool failing = s.last_failed_age_s >= 0 && (s.last_archived_age_s < 0 || s.last_failed_age_s < s.last_archived_age_s);
  gauge("walferry_archive_failing", "1 when PostgreSQL's latest archiving event is a failure.", failing ? 1 : 0);
  if (s.ready_count >= 0) {
    gauge("walferry_archive_backlog_segments", "WAL files waiting to be archived (.ready).",
          static_cast<double>(s.ready_count));
    gauge("walferry_archive_backlog_bytes", "Bytes of the WAL files waiting to be archived.",
          static_cast<double>(s.ready_bytes));
    gauge("walferry_archive_oldest_ready_age_seconds", "Age of the oldest .ready file (0 when none).",
          s.oldest_ready_age_s < 0 ? 0 : s.oldest_ready_age_s);
    const double minutes = s.rate_window_s / 60.0;
    gauge("walferry_wal_written_segments_per_minute", "WAL segments completed per minute over the last 5 minutes.",
          static_cast<double>(s.written_in_window) / minutes);
    gauge("walferry_wal_archived_segments_per_minute", "WAL segments archived per minute over the last 5 minutes.",
          static_cast<double>(s.archived_in_window) / minutes);
  }
  if (!s.in_recovery) gauge("walferry_agent_up", "1 when the walferry agent's socket answers.", s.agent_running ? 1 : 0);
  return m.Render();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& host_port, MetricsRegistry& registry,
                                                            std::function<void()> before_render) {
  WF_ASSIGN(transport::Endpoint ep, transport::ParseEndpoint(host_port));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  if (int rc = ::getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return Error(ErrorCode::kInvalidArgument, "--metrics " + host_port + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> guard(res, ::freeaddrinfo);
  int last_errno = 0;
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) {
      last_errno = errno;
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || ::listen(fd.get(), 16) != 0) {
      last_errno = errno;
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    int bound = ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                         : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    std::unique_ptr<MetricsServer> s(new MetricsServer(std::move(fd), bound, registry, std::move(before_render)));
    s->thread_ = std::thread([p = s.get()] { p->Loop(); });
    return s;
  }
  return ErrnoError(last_errno ? last_errno : EADDRNOTAVAIL, "--metrics: listen on " + host_port);
}

MetricsServer::~MetricsServer() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::Loop() {
  while (!stop_.load()) {
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, 200);
    if (n <= 0) continue;
    UniqueFd client(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.get() < 0) continue;
    Answer(client.get());
  }
}

void MetricsServer::Answer(int client) {
  timeval tv{2, 0};
  ::setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::string buf;
  HttpRequestLine req;
  HttpParse parsed = HttpParse::kIncomplete;
  char tmp[2048];
  while (parsed == HttpParse::kIncomplete) {
    ssize_t n = ::recv(client, tmp, sizeof tmp, 0);
    if (n <= 0) return;  // closed or timed out: nothing to answer
    buf.append(tmp, static_cast<std::size_t>(n));
    parsed = ParseHttpRequest(buf, &req);
  }
  std::string status = "200 OK", body;
  if (parsed == HttpParse::kBad) {
    status = "400 Bad Request";
    body = "bad request\n";
  } else if (req.method != "GET" && req.method != "HEAD") {
    status = "405 Method Not Allowed";
    body = "only GET\n";
  } else if (req.path != "/metrics") {
    status = "404 Not Found";
    body = "metrics are at /metrics\n";
  } else {
    if (before_) before_();
    body = registry_.Render();
  }
  std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n" +
                     "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  std::string out = head + (req.method == "HEAD" ? "" : body);
  const char* p = out.data();
  std::size_t left = out.size();
  while (left > 0) {
    ssize_t n = ::send(client, p, left, MSG_NOSIGNAL);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

Result<std::unique_ptr<MetricsServer>> StartMetrics(const std::string& host_port, MetricsRegistry& registry,
                                                    std::function<void()> before_render, Logger& log,
                                                    const std::string& who) {
  if (host_port.empty()) return std::unique_ptr<MetricsServer>();
  WF_ASSIGN(auto m, MetricsServer::Start(host_port, registry, std::move(before_render)));
  log.Log(LogLevel::kInfo, who + ": metrics on http://" + host_port.substr(0, host_port.rfind(':')) + ":" +
                               std::to_string(m->port()) + "/metrics");
  return m;
}

}  // namespace walferry::cli
