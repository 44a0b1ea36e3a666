// Resolving and connecting (TCP, then TLS on top): transport::Connect.
#include "transport/conn_internal.h"

namespace walferry::transport {
namespace internal {

Result<std::unique_ptr<addrinfo, AddrInfoDeleter>> Resolve(const Endpoint& ep, bool passive,
                                                           std::string_view what) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* res = nullptr;
  std::string port = std::to_string(ep.port);
  int rc = getaddrinfo(ep.host.empty() ? nullptr : ep.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    return Error(ErrorCode::kNetwork, std::string(what) + " " + EndpointString(ep) + ": " +
                                          (rc == EAI_SYSTEM ? std::strerror(errno)
                                                            : gai_strerror(rc)));
  }
  return std::unique_ptr<addrinfo, AddrInfoDeleter>(res);
}

Result<UniqueFd> ConnectTcp(const Endpoint& ep, bool loopback_only) {
  std::string where = "cannot reach " + EndpointString(ep);
  WF_ASSIGN(auto addrs, Resolve(ep, false, "cannot reach"));
  Error last(ErrorCode::kNetwork, where + ": no address");
  for (addrinfo* a = addrs.get(); a; a = a->ai_next) {
    if (loopback_only && !SockaddrIsLoopback(a->ai_addr)) continue;
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         a->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoError(errno, where);
      continue;
    }
    SetSocketOptions(fd.get());
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = ErrnoError(errno, where);
        continue;
      }
      auto w = WaitFd(fd.get(), POLLOUT, Clock::now() + kConnectTimeout, -1);
      if (!w.ok()) return w.error();
      if (*w == WaitResult::kTimeout) {
        last = Error(ErrorCode::kNetwork, where + ": connection timed out");
        continue;
      }
      int soerr = 0;
      socklen_t len = sizeof soerr;
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr != 0) {
        last = ErrnoError(soerr, where);
        continue;
      }
    }
    return fd;
  }
  return Error(ErrorCode::kNetwork, last.message());
}

}  // namespace internal

using namespace internal;

Result<std::unique_ptr<Conn>> Connect(const Endpoint& ep, const TlsConfig& tls) {
  if (tls.insecure_loopback) {
    if (!IsLoopback(ep)) {
      return Error(ErrorCode::kInvalidArgument,
                   "--insecure-loopback refused for " + EndpointString(ep) +
                       ": plain TCP is allowed only to 127.0.0.1, ::1 or localhost");
    }
    WF_ASSIGN(UniqueFd fd, ConnectTcp(ep, true));
    return std::unique_ptr<Conn>(new SocketConn(std::move(fd), EndpointString(ep)));
  }
  if (tls.tls_dir.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "no TLS directory given (--tls-dir; create one with: walferry tls init DIR)");
  }
  WF_ASSIGN(std::string cluster, PickClientCluster(tls.tls_dir, tls.cluster));
  std::string base = tls.tls_dir + "/client-" + cluster;
  WF_ASSIGN(SslCtxPtr ctx, MakeCtx(false, tls.tls_dir, base + ".crt", base + ".key"));
  WF_ASSIGN(UniqueFd fd, ConnectTcp(ep, false));
  auto conn = std::make_unique<TlsConn>(std::move(fd), EndpointString(ep), std::move(ctx));
  WF_TRY(conn->Init(false, ep.host));
  if (!tls.session_file.empty()) conn->UseSessionFile(tls.session_file);
  WF_TRY(conn->Handshake(false, Clock::now() + tls.handshake_timeout, -1));
  return std::unique_ptr<Conn>(std::move(conn));
}

}  // namespace walferry::transport
