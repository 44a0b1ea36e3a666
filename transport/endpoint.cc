// Endpoints: HOST:PORT / [IPv6]:PORT text, socket addresses, loopback tests.
#include "transport/conn_internal.h"

namespace walferry::transport {
namespace internal {

std::string EndpointString(const Endpoint& ep) {
  if (ep.host.find(':') != std::string::npos) return "[" + ep.host + "]:" + std::to_string(ep.port);
  return ep.host + ":" + std::to_string(ep.port);
}

std::string SockaddrString(const sockaddr_storage& ss) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(ntohs(sin->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof buf);
    return "[" + std::string(buf) + "]:" + std::to_string(ntohs(sin6->sin6_port));
  }
  return "?";
}

bool SockaddrIsLoopback(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) {
    auto* sin = reinterpret_cast<const sockaddr_in*>(sa);
    return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<const sockaddr_in6*>(sa);
    if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) return sin6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}


}  // namespace internal

using namespace internal;

Result<Endpoint> ParseEndpoint(const std::string& s) {
  auto bad = [&] {
    return Error(ErrorCode::kInvalidArgument,
                 "bad address \"" + s + "\" (expected HOST:PORT or [IPv6]:PORT)");
  };
  Endpoint ep;
  std::string port;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return bad();
    ep.host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    in6_addr a;
    if (inet_pton(AF_INET6, ep.host.c_str(), &a) != 1) return bad();
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) return bad();
    ep.host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (ep.host.find(':') != std::string::npos) return bad();  // IPv6 needs brackets
    for (char ch : ep.host) {
      if (static_cast<unsigned char>(ch) <= ' ' || ch == '/' || ch == '[' || ch == ']') {
        return bad();
      }
    }
  }
  if (port.empty() || port.size() > 5) return bad();
  int p = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return bad();
    p = p * 10 + (ch - '0');
  }
  if (p > 65535) return bad();
  ep.port = p;
  return ep;
}

bool IsLoopback(const Endpoint& e) {
  if (e.host == "localhost") return true;
  in_addr a4;
  if (inet_pton(AF_INET, e.host.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6;
  if (inet_pton(AF_INET6, e.host.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&a6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
  }
  return false;
}

}  // namespace walferry::transport
