// Internals of transport/'s connections, shared by its .cc files (not a
// public API; transport/net.h is):
//   endpoint.cc     endpoint and socket-address text, loopback tests
//   conn.cc         the socket BIO, poll waits, Conn::ReadExact
//   tls_error.cc    OpenSSL errors -> Error (the one converter), trust failures
//   tls_context.cc  TLS contexts from a TLS directory, key-file checks
//   tcp.cc          resolve, connect (Connect)
//   listener.cc     the threaded listener (Listen)
//
// TCP connections with TLS 1.3 mutual authentication (OpenSSL 3).
//
// How it works:
// - Every socket is non-blocking; each read/write waits with poll() bounded by
//   the connection's timeout, so a stalled peer becomes kNetwork, never a hang.
// - OpenSSL talks to the socket through a small BIO that uses send(MSG_NOSIGNAL)
//   and recv(), so a peer that vanishes gives EPIPE instead of SIGPIPE without
//   touching the process's signal dispositions.
// - Conn::Shutdown() from another thread sets a flag and calls shutdown(2); the
//   reader's poll() wakes up and sees the flag.
// - The client learns that the server accepted its certificate when the
//   server's NewSessionTicket arrives: in TLS 1.3 the server sends it only after
//   verifying the client's Certificate/Finished, and sends an alert instead when
//   it refuses. So a refused certificate fails Connect(), not the first read.
// - OpenSSL errors become an Error in exactly one function, SslError().
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <string_view>

#include <chrono>
#include <memory>
#include <string>

#include "core/fd.h"
#include "core/result.h"
#include "transport/net.h"
#include "transport/net_internal.h"
#include "transport/tls_session.h"
#include "core/names.h"

namespace walferry::transport::internal {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr milliseconds kDefaultTimeout{60000};
constexpr milliseconds kConnectTimeout{10000};

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// endpoint.cc
std::string EndpointString(const Endpoint& ep);  // "host:port", "[v6]:port"
std::string SockaddrString(const sockaddr_storage& ss);
bool SockaddrIsLoopback(const sockaddr* sa);

// tls_error.cc: true for handshake failures that a retry cannot fix.
bool IsTrustFailure(unsigned long e);  // NOLINT(runtime/int)

// conn.cc: a BIO on a non-blocking socket, send(MSG_NOSIGNAL)/recv.
const BIO_METHOD* SocketBioMethod();
enum class WaitResult { kReady, kTimeout, kWoken };
// Waits for `events` on fd until `deadline`; also returns kWoken when wake_fd
// (an eventfd, or -1) becomes readable.
Result<WaitResult> WaitFd(int fd, short events, Clock::time_point deadline, int wake_fd);
std::string TimeoutText(milliseconds t);  // "60 s", "250 ms"
// Best effort: a socket without these options still works.
void SetSocketOptions(int fd);

// tcp.cc
struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
Result<std::unique_ptr<addrinfo, AddrInfoDeleter>> Resolve(const Endpoint& ep, bool passive, std::string_view what);
Result<UniqueFd> ConnectTcp(const Endpoint& ep, bool loopback_only);

// tls_context.cc
Status CheckKeyFile(const std::string& path);
Status NeedFile(const std::string& dir, const std::string& path);
Result<SslCtxPtr> MakeCtx(bool server, const std::string& dir, const std::string& cert, const std::string& key);
Result<std::string> PickClientCluster(const std::string& dir, const std::string& cluster);

// ---- Conn implementations ------------------------------------------------------

class SocketConn : public Conn {
 public:
  SocketConn(UniqueFd fd, std::string peer) : fd_(std::move(fd)), peer_(std::move(peer)) {}
  ~SocketConn() override = default;

  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    auto deadline = Clock::now() + timeout_;
    for (;;) {
      if (shut_.load()) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " shut down");
      ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n >= 0) {
        if (n == 0 && shut_.load()) {
          return Error(ErrorCode::kNetwork, "connection to " + peer_ + " shut down");
        }
        return static_cast<std::size_t>(n);
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoError(errno, "read from " + peer_);
      WF_TRY(Wait(POLLIN, deadline, "reading from"));
    }
  }

  Status WriteAll(std::span<const std::byte> data) override {
    auto deadline = Clock::now() + timeout_;
    while (!data.empty()) {
      if (shut_.load()) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " shut down");
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        data = data.subspan(static_cast<std::size_t>(n));
        deadline = Clock::now() + timeout_;  // progress restarts the clock
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return ErrnoError(errno, "write to " + peer_);
      WF_TRY(Wait(POLLOUT, deadline, "writing to"));
    }
    return Status::Ok();
  }

  void Shutdown() override {
    shut_.store(true);
    ::shutdown(fd_.get(), SHUT_RDWR);
  }
  const std::string& peer_cluster() const override { return cluster_; }
  std::string peer_address() const override { return peer_; }
  void SetTimeout(milliseconds t) override { timeout_ = t; }

 protected:
  Status Wait(short events, Clock::time_point deadline, std::string_view doing) {
    WF_ASSIGN(WaitResult w, WaitFd(fd_.get(), events, deadline, -1));
    if (w == WaitResult::kTimeout) {
      return Error(ErrorCode::kNetwork, "timed out after " + TimeoutText(timeout_) + " " +
                                            std::string(doing) + " " + peer_);
    }
    return Status::Ok();
  }

  UniqueFd fd_;
  std::string peer_;
  std::string cluster_;
  milliseconds timeout_ = kDefaultTimeout;
  std::atomic<bool> shut_{false};
};

class TlsConn : public SocketConn {
 public:
  TlsConn(UniqueFd fd, std::string peer, SslCtxPtr ctx)
      : SocketConn(std::move(fd), std::move(peer)), ctx_(std::move(ctx)) {}

  ~TlsConn() override {
    if (ssl_ && established_ && !failed_ && !shut_.load()) {
      ERR_clear_error();
      SSL_shutdown(ssl_.get());  // best effort close_notify; never waits
      ERR_clear_error();
    }
  }

  // Sets up the SSL object on the socket. `server` picks the role.
  Status Init(bool server, const std::string& verify_host) {
    ssl_.reset(SSL_new(ctx_.get()));
    if (!ssl_) return SslError(ErrorCode::kInternal, "SSL_new");
    BIO* bio = BIO_new(SocketBioMethod());
    if (!bio) return SslError(ErrorCode::kInternal, "BIO_new");
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd_.get())));
    SSL_set_bio(ssl_.get(), bio, bio);
    SSL_set_app_data(ssl_.get(), this);
    if (server) {
      SSL_set_accept_state(ssl_.get());
    } else {
      SSL_set_connect_state(ssl_.get());
      if (!verify_host.empty()) {
        in6_addr a6;
        in_addr a4;
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_.get());
        bool ok;
        if (inet_pton(AF_INET, verify_host.c_str(), &a4) == 1 ||
            inet_pton(AF_INET6, verify_host.c_str(), &a6) == 1) {
          ok = X509_VERIFY_PARAM_set1_ip_asc(param, verify_host.c_str()) == 1;
        } else {
          ok = SSL_set1_host(ssl_.get(), verify_host.c_str()) == 1;
          SSL_set_tlsext_host_name(ssl_.get(), verify_host.c_str());
        }
        if (!ok) return SslError(ErrorCode::kInvalidArgument, "server name " + verify_host);
      }
    }
    return Status::Ok();
  }

  // Runs the handshake. Client: also waits for the server's session ticket,
  // which proves the server accepted our certificate. wake_fd: see WaitFd.
  Status Handshake(bool server, Clock::time_point deadline, int wake_fd) {
    for (;;) {
      ERR_clear_error();
      errno = 0;
      int r = SSL_do_handshake(ssl_.get());
      if (r == 1) break;
      int err = SSL_get_error(ssl_.get(), r);
      int saved = errno;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        WF_TRY(WaitHandshake(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, wake_fd));
        continue;
      }
      failed_ = true;
      return HandshakeError(server, err, saved);
    }
    if (server) {
      X509* cert = SSL_get0_peer_certificate(ssl_.get());
      if (!cert) {
        failed_ = true;
        return Error(ErrorCode::kAuth, "TLS handshake with " + peer_ + ": no client certificate");
      }
      WF_ASSIGN(cluster_, CertCommonName(cert));
      established_ = true;
      return Status::Ok();
    }
    // Client: wait for the server's verdict on our certificate.
    while (!ticket_seen_) {
      ERR_clear_error();
      errno = 0;
      char byte;
      std::size_t got = 0;
      int r = SSL_peek_ex(ssl_.get(), &byte, 1, &got);
      if (r == 1) break;  // application data already: accepted
      int err = SSL_get_error(ssl_.get(), r);
      int saved = errno;
      if (ticket_seen_) break;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        WF_TRY(WaitHandshake(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, wake_fd));
        continue;
      }
      failed_ = true;
      return HandshakeError(server, err, saved);
    }
    established_ = true;
    return Status::Ok();
  }

  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    if (failed_) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " failed earlier");
    auto deadline = Clock::now() + timeout_;
    for (;;) {
      if (shut_.load()) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " shut down");
      ERR_clear_error();
      errno = 0;
      std::size_t got = 0;
      int r = SSL_read_ex(ssl_.get(), buf.data(), buf.size(), &got);
      if (r == 1) return got;
      int err = SSL_get_error(ssl_.get(), r);
      int saved = errno;
      if (err == SSL_ERROR_ZERO_RETURN) return std::size_t{0};
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        WF_TRY(Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "reading from"));
        continue;
      }
      return IoError(err, saved, "read from");
    }
  }

  Status WriteAll(std::span<const std::byte> data) override {
    if (failed_) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " failed earlier");
    auto deadline = Clock::now() + timeout_;
    while (!data.empty()) {
      if (shut_.load()) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " shut down");
      ERR_clear_error();
      errno = 0;
      std::size_t put = 0;
      int r = SSL_write_ex(ssl_.get(), data.data(), data.size(), &put);
      if (r == 1) {
        data = data.subspan(put);
        deadline = Clock::now() + timeout_;
        continue;
      }
      int err = SSL_get_error(ssl_.get(), r);
      int saved = errno;
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        WF_TRY(Wait(err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, "writing to"));
        continue;
      }
      return IoError(err, saved, "write to");
    }
    return Status::Ok();
  }

  // Verify callback: remembers, in words, why the peer's chain failed (which
  // certificate, and when it expired) for HandshakeError.
  static int OnVerify(int ok, X509_STORE_CTX* sctx) {
    if (ok) return 1;
    auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
    auto* self = ssl ? static_cast<TlsConn*>(SSL_get_app_data(ssl)) : nullptr;
    if (self && self->verify_detail_.empty()) {
      int err = X509_STORE_CTX_get_error(sctx);
      X509* cert = X509_STORE_CTX_get_current_cert(sctx);
      std::string which = "certificate \"" + internal::CertSubjectCn(cert) + "\"";
      switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
          self->verify_detail_ = which + " expired at " + internal::CertTimeText(X509_get0_notAfter(cert));
          break;
        case X509_V_ERR_CERT_NOT_YET_VALID:
          self->verify_detail_ =
              which + " is not valid before " + internal::CertTimeText(X509_get0_notBefore(cert));
          break;
        case X509_V_ERR_CERT_REVOKED:
          self->verify_detail_ = which + " is revoked (listed in the receiver's crl.pem)";
          break;
        default:
          self->verify_detail_ = which + ": " + X509_verify_cert_error_string(err);
      }
      self->verify_error_ = err;
    }
    return 0;
  }

  static int OnNewSession(SSL* ssl, SSL_SESSION* session) {
    if (auto* self = static_cast<TlsConn*>(SSL_get_app_data(ssl))) {
      self->ticket_seen_ = true;
      if (!self->session_file_.empty()) internal::SaveTlsSession(self->session_file_, session);
    }
    return 0;  // we did not keep a reference to the session
  }

  // Client, before Handshake: offers the session cached in `path` (if any)
  // and stores the tickets this connection receives there.
  void UseSessionFile(const std::string& path) {
    session_file_ = path;
    if (SSL_SESSION* s = internal::LoadTlsSession(path)) {
      SSL_set_session(ssl_.get(), s);
      SSL_SESSION_free(s);
    }
  }
  bool tls_resumed() const override { return ssl_ && SSL_session_reused(ssl_.get()) == 1; }

 private:
  Status WaitHandshake(short events, Clock::time_point deadline, int wake_fd) {
    WF_ASSIGN(WaitResult w, WaitFd(fd_.get(), events, deadline, wake_fd));
    if (w == WaitResult::kTimeout) {
      failed_ = true;
      return Error(ErrorCode::kNetwork, "TLS handshake with " + peer_ + " timed out");
    }
    if (w == WaitResult::kWoken) {
      failed_ = true;
      return Error(ErrorCode::kNetwork, "listener closed");
    }
    return Status::Ok();
  }

  Error HandshakeError(bool server, int err, int saved_errno) {
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      std::string what = server ? "TLS handshake with " + peer_
                                : "cannot reach " + peer_ + " (TLS handshake)";
      Error e = saved_errno != 0 ? ErrnoError(saved_errno, what)
                                 : Error(ErrorCode::kNetwork, what + ": connection closed");
      return Error(ErrorCode::kNetwork, e.message());
    }
    long verify = SSL_get_verify_result(ssl_.get());  // NOLINT(runtime/int)
    if (verify != X509_V_OK) {
      ERR_clear_error();
      std::string why = verify_detail_.empty() ? X509_verify_cert_error_string(verify) : verify_detail_;
      bool lifetime = verify_error_ == X509_V_ERR_CERT_HAS_EXPIRED || verify_error_ == X509_V_ERR_CERT_NOT_YET_VALID;
      if (server) {
        return Error(ErrorCode::kAuth, "client certificate of " + peer_ + " refused: " + why);
      }
      if (lifetime) {
        return Error(ErrorCode::kAuth, "server certificate of " + peer_ + " refused: " + why +
                                           " (renew it on the receiver: walferry tls init DIR --renew server)");
      }
      return Error(ErrorCode::kAuth, "server certificate of " + peer_ + " not trusted: " + why +
                                         " (both sides need certificates from the same "
                                         "`walferry tls init`; the server's must name the host "
                                         "you connect to: tls init --server-name)");
    }
    if (!server) {
      // The receiver refused our own certificate for its lifetime or revocation.
      unsigned long e = ERR_peek_last_error();  // NOLINT(runtime/int)
      if (e == 0) e = ERR_peek_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && (ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED ||
                                            ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED)) {
        bool expired = ERR_GET_REASON(e) == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED;
        ERR_clear_error();
        X509* own = SSL_get_certificate(ssl_.get());
        std::string cn = internal::CertSubjectCn(own);
        std::string when = internal::CertValidityProblem(own);
        std::string msg = "receiver " + peer_ + " refused our client certificate \"" + cn + "\": ";
        if (expired) {
          msg += (when.empty() ? std::string("it has expired by the receiver's clock") : "it " + when) +
                 " (renew it: walferry tls init DIR --renew " + cn + ")";
        } else {
          msg += "it is revoked (get a new one: walferry tls init DIR --cluster " + cn + ")";
        }
        return Error(ErrorCode::kAuth, msg);
      }
    }
    if (!IsTrustFailure(ERR_peek_error()) && !IsTrustFailure(ERR_peek_last_error())) {
      // Damaged or cut handshake (a network fault, worth a retry).
      unsigned long first = ERR_peek_error();  // NOLINT(runtime/int)
      const bool not_tls = ERR_GET_LIB(first) == ERR_LIB_SSL && ERR_GET_REASON(first) == SSL_R_WRONG_VERSION_NUMBER;
      std::string what = server ? "TLS handshake with " + peer_ + " failed"
                                : "cannot reach " + peer_ + " (TLS handshake failed)";
      if (not_tls) what += " (the peer's bytes are not TLS: damaged on the way, or that port does not speak TLS)";
      return SslError(ErrorCode::kNetwork, what, err);
    }
    if (server) return SslError(ErrorCode::kAuth, "TLS handshake with " + peer_ + " refused", err);
    Error e = SslError(ErrorCode::kAuth, "certificate refused by " + peer_, err);
    return Error(ErrorCode::kAuth,
                 e.message() + " (both sides need certificates from the same `walferry tls init`)");
  }

  Error IoError(int err, int saved_errno, std::string_view doing) {
    failed_ = true;
    std::string ctx = std::string(doing) + " " + peer_;
    if (shut_.load()) return Error(ErrorCode::kNetwork, "connection to " + peer_ + " shut down");
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      if (saved_errno != 0) return ErrnoError(saved_errno, ctx);
      return Error(ErrorCode::kNetwork, ctx + ": connection closed");
    }
    // A peer that closes without close_notify: OpenSSL 3's "unexpected eof".
    if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
        ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      ERR_clear_error();
      return Error(ErrorCode::kNetwork, ctx + ": connection closed");
    }
    return SslError(ErrorCode::kNetwork, ctx, err);
  }

  static Result<std::string> CertCommonName(X509* cert) {
    X509_NAME* name = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return Error(ErrorCode::kAuth, "client certificate has no CN");
    ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0) return Error(ErrorCode::kAuth, "client certificate CN unreadable");
    std::string cn(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
    OPENSSL_free(utf8);
    if (!ValidateClusterName(cn).ok()) {
      return Error(ErrorCode::kAuth, "client certificate CN is not a valid cluster name");
    }
    return cn;
  }

  SslCtxPtr ctx_;
  SslPtr ssl_;
  bool established_ = false;
  std::atomic<bool> failed_{false};
  bool ticket_seen_ = false;
  std::string session_file_;
  std::string verify_detail_;  // set by OnVerify during the handshake
  int verify_error_ = X509_V_OK;
};

}  // namespace walferry::transport::internal
