// A Conn over a plain connected socket fd (socketpair, accepted TCP socket),
// without TLS, for tests; production network connections come from
// transport/net.h (Connect/Listen).
// Thread-safety: as Conn (one user thread; Shutdown from any thread).
#pragma once

#include <memory>
#include <string>

#include "core/fd.h"
#include "transport/net.h"

namespace walferry::transport {

// `peer_cluster` is what peer_cluster() returns ("" = insecure: the protocol
// then uses the cluster claimed in HELLO).
std::unique_ptr<Conn> MakeFdConn(UniqueFd fd, std::string peer_cluster, std::string peer_address);

}  // namespace walferry::transport
