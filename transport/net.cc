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
#include "transport/net.h"

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

#include "core/fd.h"
#include "core/names.h"
#include "transport/net_internal.h"
#include "transport/tls_session.h"

namespace walferry::transport {
namespace {

using internal::SslError;

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


// True for handshake failures that a retry cannot fix: the peer refused our
// certificate, we refused its, or the two sides share no protocol version.
bool IsTrustFailure(unsigned long e) {  // NOLINT(runtime/int)
  if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL) return false;
  switch (ERR_GET_REASON(e)) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_WRONG_VERSION_NUMBER:
      return true;
    default:
      return false;
  }
}

// ---- socket BIO with MSG_NOSIGNAL -------------------------------------------

int BioWrite(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  ssize_t n = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(b);
  }
  return static_cast<int>(n);
}

int BioRead(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  ssize_t n = ::recv(fd, data, static_cast<size_t>(len), 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_read(b);
  }
  if (n == 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
  return static_cast<int>(n);
}

long BioCtrl(BIO* b, int cmd, long, void*) {  // NOLINT(runtime/int)
  switch (cmd) {
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return BIO_test_flags(b, BIO_FLAGS_IN_EOF) ? 1 : 0;
    default: return 0;
  }
}

int BioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* SocketBioMethod() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "walferry socket");
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, BioCreate);
    return m;
  }();
  return method;
}

// ---- waiting ------------------------------------------------------------------

enum class WaitResult { kReady, kTimeout, kWoken };

// Waits for `events` on fd until `deadline`; also returns kWoken when wake_fd
// (an eventfd, or -1) becomes readable.
Result<WaitResult> WaitFd(int fd, short events, Clock::time_point deadline, int wake_fd) {
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return WaitResult::kTimeout;
    pollfd p[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    int r = ::poll(p, wake_fd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, "poll");
    }
    if (r == 0) continue;  // recheck the deadline
    if (wake_fd >= 0 && (p[1].revents & POLLIN)) return WaitResult::kWoken;
    return WaitResult::kReady;  // also on POLLERR/POLLHUP: the next call reports it
  }
}

std::string TimeoutText(milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  return std::to_string(t.count()) + " ms";
}

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
      return SslError(ErrorCode::kNetwork,
                      server ? "TLS handshake with " + peer_ + " failed"
                             : "cannot reach " + peer_ + " (TLS handshake failed)",
                      err);
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

// ---- TLS contexts ----------------------------------------------------------------

Status CheckKeyFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, path).Wrap("TLS key");
  }
  if (st.st_mode & 0007) {
    return Error(ErrorCode::kInvalidArgument,
                 "TLS key " + path + " is readable by other users; run: chmod 600 " + path);
  }
  return Status::Ok();
}

Status NeedFile(const std::string& dir, const std::string& path) {
  if (::access(path.c_str(), R_OK) == 0) return Status::Ok();
  int err = errno;
  if (err == ENOENT) {
    return Error(ErrorCode::kInvalidArgument,
                 "TLS directory " + dir + " has no " + path.substr(dir.size() + 1) +
                     " (create one with: walferry tls init " + dir + ")");
  }
  return Error(ErrorCode::kInvalidArgument, "TLS file " + path + ": " + std::strerror(err));
}

Result<SslCtxPtr> MakeCtx(bool server, const std::string& dir, const std::string& cert,
                          const std::string& key) {
  std::string ca = dir + "/ca.crt";
  WF_TRY(NeedFile(dir, ca));
  WF_TRY(NeedFile(dir, cert));
  WF_TRY(NeedFile(dir, key));
  WF_TRY(CheckKeyFile(key));
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return SslError(ErrorCode::kInternal, "SSL_CTX_new");
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_AUTO_RETRY);
  if (SSL_CTX_load_verify_file(c, ca.c_str()) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS CA " + ca);
  }
  if (SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS certificate " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS key " + key);
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS key " + key + " does not match " + cert);
  }
  SSL_CTX_set_verify_depth(c, 2);
  WF_TRY(internal::LoadCrls(c, dir + "/crl.pem"));
  if (server) {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, TlsConn::OnVerify);
    SSL_CTX_set_purpose(c, X509_PURPOSE_SSL_CLIENT);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(c, names);
    // One ticket: sent only once the client's certificate is verified, it
    // tells the client it was accepted (see the top of this file).
    SSL_CTX_set_num_tickets(c, 1);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(c, reinterpret_cast<const unsigned char*>("walferry"), 8);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, TlsConn::OnVerify);
    SSL_CTX_set_purpose(c, X509_PURPOSE_SSL_SERVER);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, TlsConn::OnNewSession);
  }
  return ctx;
}

Result<std::string> PickClientCluster(const std::string& dir, const std::string& cluster) {
  if (!cluster.empty()) {
    if (!ValidateClusterName(cluster).ok()) {
      return Error(ErrorCode::kInvalidArgument, "invalid cluster name \"" + cluster + "\"");
    }
    std::string crt = dir + "/client-" + cluster + ".crt";
    if (::access(crt.c_str(), R_OK) != 0) {
      return Error(ErrorCode::kInvalidArgument,
                   "TLS directory " + dir + " has no client certificate for cluster " + cluster +
                       " (create one with: walferry tls init " + dir + " --cluster " + cluster +
                       ")");
    }
    return cluster;
  }
  WF_ASSIGN(std::vector<std::string> found, internal::ListClientClusters(dir));
  if (found.size() == 1) return found[0];
  if (found.empty()) {
    return Error(ErrorCode::kInvalidArgument, "TLS directory " + dir +
                                                  " has no client certificate (create one with: "
                                                  "walferry tls init " + dir + ")");
  }
  std::string list;
  for (const auto& f : found) list += (list.empty() ? "" : ", ") + f;
  return Error(ErrorCode::kInvalidArgument, "TLS directory " + dir +
                                                " has client certificates for several clusters (" +
                                                list + "); pick one with --cluster");
}

// Best effort: a socket without these options still works.
void SetSocketOptions(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

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

// ---- Listener ----------------------------------------------------------------------

// Accepting runs on its own thread and every TLS handshake on a short-lived
// thread of its own, so a client that connects and then stalls (or a slow
// one) never delays the others: Accept() hands out connections in the order
// their handshakes finish. Handshakes in flight and finished connections not
// yet taken by Accept() are both bounded.
class TcpListener : public Listener {
 public:
  static constexpr int kMaxHandshakes = 64;
  static constexpr std::size_t kMaxReady = 64;

  TcpListener(UniqueFd fd, UniqueFd wake, int port, SslCtxPtr ctx, bool loopback_only,
              milliseconds handshake_timeout, std::string tls_dir)
      : tls_dir_(std::move(tls_dir)),
        fd_(std::move(fd)),
        wake_(std::move(wake)),
        port_(port),
        ctx_(std::move(ctx)),
        loopback_only_(loopback_only),
        handshake_timeout_(handshake_timeout) {
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }

  ~TcpListener() override {
    Close();
    if (acceptor_.joinable()) acceptor_.join();
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return handshaking_ == 0; });  // they hold `this`
  }

  Result<std::unique_ptr<Conn>> Accept() override {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !ready_.empty() || stopped_; });
    if (stopped_ || closed_.load()) return Error(ErrorCode::kNetwork, "listener closed");
    Result<std::unique_ptr<Conn>> r = std::move(ready_.front());
    ready_.pop_front();
    cv_.notify_all();  // room for the acceptor
    return r;
  }

  int port() const override { return port_; }

  Result<std::string> Reload() override {
    if (tls_dir_.empty()) return std::string("plain TCP: nothing to reload");
    WF_ASSIGN(SslCtxPtr fresh, MakeCtx(true, tls_dir_, tls_dir_ + "/server.crt", tls_dir_ + "/server.key"));
    int revoked = 0;
    if (STACK_OF(X509_OBJECT)* objs = X509_STORE_get0_objects(SSL_CTX_get_cert_store(fresh.get()))) {
      for (int i = 0; i < sk_X509_OBJECT_num(objs); ++i) {
        X509_CRL* crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objs, i));
        if (crl && X509_CRL_get_REVOKED(crl)) revoked += sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
      }
    }
    std::string what = internal::CertValidityProblem(SSL_CTX_get0_certificate(fresh.get()));
    std::lock_guard lk(mu_);
    ctx_ = std::move(fresh);  // connections already open keep the context they were made with
    return "reloaded " + tls_dir_ + ": " + std::to_string(revoked) + " revoked certificate(s)" +
           (what.empty() ? "" : "; WARNING: server certificate " + what);
  }

  void Close() override {
    closed_.store(true);
    uint64_t one = 1;
    ssize_t r = ::write(wake_.get(), &one, sizeof one);  // async-signal-safe
    (void)r;
  }

 private:
  void Push(Result<std::unique_ptr<Conn>> r) {
    std::lock_guard lk(mu_);
    ready_.push_back(std::move(r));
    cv_.notify_all();
  }

  void AcceptLoop() {
    for (;;) {
      {
        // Back-pressure: stop accepting while Accept() is not keeping up.
        std::unique_lock lk(mu_);
        while (ready_.size() >= kMaxReady && !closed_.load()) {
          cv_.wait_for(lk, milliseconds(100));
        }
      }
      if (closed_.load()) break;
      auto w = WaitFd(fd_.get(), POLLIN, Clock::time_point::max(), wake_.get());
      if (!w.ok()) {
        Push(w.error());
        break;
      }
      if (*w == WaitResult::kWoken || closed_.load()) break;
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      UniqueFd c(::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!c.valid()) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED) continue;
        Push(ErrnoError(err, "accept"));
        // Out of descriptors or memory: give the server a moment to free some.
        WaitFd(wake_.get(), POLLIN, Clock::now() + milliseconds(100), -1).ok();
        continue;
      }
      std::string peer = SockaddrString(ss);
      if (loopback_only_ && !SockaddrIsLoopback(reinterpret_cast<sockaddr*>(&ss))) {
        Push(Error(ErrorCode::kAuth, "refused non-loopback client " + peer + " (insecure mode)"));
        continue;
      }
      SetSocketOptions(c.get());
      if (tls_dir_.empty()) {
        Push(std::unique_ptr<Conn>(new SocketConn(std::move(c), std::move(peer))));
        continue;
      }
      SslCtxPtr ctx;
      {
        std::lock_guard lk(mu_);
        if (handshaking_ >= kMaxHandshakes) {
          ready_.push_back(Error(ErrorCode::kRefused,
                                 "refused " + peer + ": too many TLS handshakes in progress"));
          cv_.notify_all();
          continue;
        }
        ++handshaking_;
        SSL_CTX_up_ref(ctx_.get());
        ctx = SslCtxPtr(ctx_.get());
      }
      auto conn = std::make_unique<TlsConn>(std::move(c), peer, std::move(ctx));
      std::thread([this, conn = std::move(conn)]() mutable {
        Status st = conn->Init(true, "");
        if (st.ok()) st = conn->Handshake(true, Clock::now() + handshake_timeout_, wake_.get());
        Result<std::unique_ptr<Conn>> r =
            st.ok() ? Result<std::unique_ptr<Conn>>(std::unique_ptr<Conn>(std::move(conn)))
                    : Result<std::unique_ptr<Conn>>(st.error());
        conn.reset();
        std::lock_guard lk(mu_);
        ready_.push_back(std::move(r));
        --handshaking_;
        cv_.notify_all();
      }).detach();
    }
    std::lock_guard lk(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

  const std::string tls_dir_;  // "" for plain TCP
  UniqueFd fd_;
  UniqueFd wake_;
  int port_;
  SslCtxPtr ctx_;  // guarded by mu_ (Reload swaps it)
  bool loopback_only_;
  milliseconds handshake_timeout_;
  std::atomic<bool> closed_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Result<std::unique_ptr<Conn>>> ready_;  // guarded by mu_
  int handshaking_ = 0;                               // guarded by mu_
  bool stopped_ = false;                              // guarded by mu_
  std::thread acceptor_;
};

}  // namespace

namespace internal {

// The one place OpenSSL's error queue becomes an Error. Drains the queue.
Error SslError(ErrorCode code, std::string_view context, int ssl_error, int saved_errno) {
  std::string detail;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    std::string r = reason ? reason : ("error " + std::to_string(ERR_GET_REASON(e)));
    if (detail.find(r) == std::string::npos) {
      if (!detail.empty()) detail += "; ";
      detail += r;
    }
  }
  if (detail.empty()) {
    if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0) {
      detail = std::strerror(saved_errno);
    } else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
      detail = "connection closed";
    } else if (ssl_error != 0) {
      detail = "TLS error " + std::to_string(ssl_error);
    } else {
      return Error(code, std::string(context));
    }
  }
  std::string msg(context);
  msg += ": ";
  msg += detail;
  return Error(code, std::move(msg));
}

}  // namespace internal

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

Status Conn::ReadExact(std::span<std::byte> buf) {
  while (!buf.empty()) {
    WF_ASSIGN(std::size_t n, ReadSome(buf));
    if (n == 0) {
      return Error(ErrorCode::kNetwork, "connection closed by " + peer_address());
    }
    buf = buf.subspan(n);
  }
  return Status::Ok();
}

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

Result<std::unique_ptr<Listener>> Listen(const Endpoint& ep, const TlsConfig& tls) {
  SslCtxPtr ctx;
  if (tls.insecure_loopback) {
    if (!IsLoopback(ep)) {
      return Error(ErrorCode::kInvalidArgument,
                   "--insecure-loopback refused for " + EndpointString(ep) +
                       ": plain TCP may listen only on 127.0.0.1, ::1 or localhost");
    }
  } else {
    if (tls.tls_dir.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "no TLS directory given (--tls-dir; create one with: walferry tls init DIR)");
    }
    WF_ASSIGN(ctx, MakeCtx(true, tls.tls_dir, tls.tls_dir + "/server.crt",
                           tls.tls_dir + "/server.key"));
  }
  std::string where = "listen on " + EndpointString(ep);
  WF_ASSIGN(auto addrs, Resolve(ep, true, "listen on"));
  Error last(ErrorCode::kNetwork, where + ": no address");
  for (addrinfo* a = addrs.get(); a; a = a->ai_next) {
    if (tls.insecure_loopback && !SockaddrIsLoopback(a->ai_addr)) continue;
    UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                         a->ai_protocol));
    if (!fd.valid()) {
      last = ErrnoError(errno, where);
      continue;
    }
    int one = 1, zero = 0;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ai_family == AF_INET6) {
      // "::" serves IPv4 too; a specific IPv6 address only itself.
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
      int v6only = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr) ? zero : one;
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
    }
    if (::bind(fd.get(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd.get(), 128) != 0) {
      last = ErrnoError(errno, where);
      continue;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    int port = ss.ss_family == AF_INET6
                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                   : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake.valid()) return ErrnoError(errno, "eventfd");
    return std::unique_ptr<Listener>(new TcpListener(std::move(fd), std::move(wake), port,
                                                     std::move(ctx), tls.insecure_loopback,
                                                     tls.handshake_timeout,
                                                     tls.insecure_loopback ? "" : tls.tls_dir));
  }
  return last;
}

}  // namespace walferry::transport
