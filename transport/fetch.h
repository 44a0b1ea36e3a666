// The reading side of the wire protocol: FETCH a stored entry from a receiver
// (`walferry get --from HOST:PORT`). The one client of FETCH in the tree; the
// server's side is transport/server.cc (Session::Fetch).
//
// Thread-safety: Fetch uses only its arguments; calls on different sinks may
// run at once.
#pragma once

#include <string>

#include "core/result.h"
#include "core/stream.h"
#include "transport/net.h"

namespace walferry::transport {

// Opens one connection to `endpoint` (TLS per `tls`), sends HELLO (claiming
// `cluster`, which only an insecure receiver believes; a certificate decides
// otherwise) and FETCH{name} back to back (one round trip after the TLS
// handshake), and streams the entry's raw bytes to `sink`, then finishes it.
// Every chunk must arrive in order with its XXH3-64 right, and the whole
// stream's size and XXH3-128 must match the COMMIT frame: kCorrupt otherwise,
// kProtocol for frames out of order. The receiver's ERROR comes back with its
// code (kNotFound when the store lacks the entry, its message alone).
Status Fetch(const Endpoint& endpoint, const TlsConfig& tls, const std::string& cluster, const std::string& name,
             ByteSink& sink);

}  // namespace walferry::transport
