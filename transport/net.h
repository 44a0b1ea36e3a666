// Connections: TCP over IPv4/IPv6, wrapped in TLS 1.3 with mutual certificate
// authentication (OpenSSL), or plain TCP for tests/demos on loopback only.
//
// Trust material lives in a TLS directory made by `walferry tls init DIR`:
//   DIR/ca.crt                     the CA both sides trust
//   DIR/server.crt, server.key     the receiver's certificate
//   DIR/client-<cluster>.crt/.key  one client certificate per cluster; the
//                                  certificate's CN is the cluster name
// Key files are mode 0600.
//
// Thread-safety: a Conn is used by one thread at a time, except that
// Shutdown() may be called from another thread to unblock a reader.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"

namespace walferry::transport {

struct Endpoint {
  std::string host;  // "127.0.0.1", "::1", a name
  int port = 0;
};
// Parses "HOST:PORT", "[V6]:PORT". kInvalidArgument on anything else.
Result<Endpoint> ParseEndpoint(const std::string& s);
bool IsLoopback(const Endpoint& e);  // 127.0.0.0/8, ::1, "localhost"

class Conn {
 public:
  virtual ~Conn() = default;
  // Reads at least 1 byte (blocking); 0 means orderly EOF. kNetwork on reset/timeout.
  virtual Result<std::size_t> ReadSome(std::span<std::byte> buf) = 0;
  // Reads exactly buf.size() bytes; kNetwork (message says "connection closed") on early EOF.
  Status ReadExact(std::span<std::byte> buf);
  virtual Status WriteAll(std::span<const std::byte> data) = 0;
  // Closes both directions now; safe from another thread.
  virtual void Shutdown() = 0;
  // Cluster this peer authenticated as (client certificate CN) on the server
  // side; on an insecure connection, the cluster the client claimed is used
  // by the protocol instead and this returns "".
  virtual const std::string& peer_cluster() const = 0;
  virtual std::string peer_address() const = 0;
  // Per-operation I/O timeout (default 60 s); a stalled peer gives kNetwork.
  virtual void SetTimeout(std::chrono::milliseconds t) = 0;
  // Client side: true when the TLS handshake resumed a cached session.
  virtual bool tls_resumed() const { return false; }
};

struct TlsConfig {
  std::string tls_dir;         // empty together with insecure_loopback
  std::string cluster;         // client: which client-<cluster> cert to use; "" = the only one
  bool insecure_loopback = false;  // plain TCP; refused unless the address is loopback
  // Client: TLS 1.3 session cache file (see transport/tls_session.h); the
  // session in it is offered for resumption and each new ticket the receiver
  // issues replaces it. "" = no resumption (full handshake every time).
  std::string session_file;
  // Bound on the whole TLS handshake (a client that connects and sends nothing
  // is dropped after this); Listen and Connect.
  std::chrono::milliseconds handshake_timeout{10000};
};

// Client side. Errors: kNetwork "cannot reach HOST:PORT: ..." (unreachable),
// kAuth "certificate refused by HOST:PORT ..." (TLS/cert failures), kInvalidArgument
// (bad TLS dir, insecure mode on a non-loopback address).
Result<std::unique_ptr<Conn>> Connect(const Endpoint& ep, const TlsConfig& tls);

class Listener {
 public:
  virtual ~Listener() = default;
  // Blocks for the next connection. The TLS handshake (and client certificate
  // verification) happens here; a client that fails it yields an Error (log it
  // and keep accepting). Returns kNetwork "listener closed" after Close().
  virtual Result<std::unique_ptr<Conn>> Accept() = 0;
  virtual int port() const = 0;  // the bound port (useful with port 0)
  // Re-reads the TLS directory (server certificate and key, CA, crl.pem) for
  // the handshakes that start after it; open connections keep theirs. On an
  // error the old files stay in use. Returns a one-line summary for the log.
  virtual Result<std::string> Reload() { return std::string("nothing to reload"); }
  virtual void Close() = 0;      // safe from another thread / signal-safe flag
};

// Binds and listens. Server side of TlsConfig: tls_dir must hold ca.crt,
// server.crt, server.key; or insecure_loopback on a loopback address.
Result<std::unique_ptr<Listener>> Listen(const Endpoint& ep, const TlsConfig& tls);

// "" when the certificate in PEM file `path` is valid now (or unreadable: the
// TLS set-up reports that); else "PATH (CN) expired at TIME" / "... not valid before TIME".
std::string CertLifetimeProblem(const std::string& path);

// `walferry tls init`: creates DIR (0700) with a CA, a server certificate (SAN:
// `server_names`, default localhost/127.0.0.1/::1 plus the host name) and one
// client certificate per cluster. Refuses to overwrite existing files unless `force`.
Status InitTlsDir(const std::string& dir, const std::vector<std::string>& clusters,
                  const std::vector<std::string>& server_names, bool force);

// `walferry tls init DIR --renew WHICH`: a new key and certificate, signed by
// DIR's CA, replace DIR/server.* (WHICH "server"; its host names are kept) or
// DIR/client-WHICH.*. kNotFound when there is nothing to renew.
Status RenewTlsCert(const std::string& dir, const std::string& which);

// `walferry tls init DIR --revoke CLUSTER`: adds client-CLUSTER.crt's serial to
// DIR/crl.pem (a CRL signed by the CA, created if missing), keeps the
// certificate as revoked-client-CLUSTER-SERIAL.crt and deletes its key.
// Receivers that load crl.pem (at start, or on SIGHUP) refuse it. Returns the serial (hex).
Result<std::string> RevokeTlsClient(const std::string& dir, const std::string& cluster);

}  // namespace walferry::transport
