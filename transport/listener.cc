// The threaded listener: transport::Listen.
#include "transport/conn_internal.h"

namespace walferry::transport {

using namespace internal;

namespace {

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

  // The TLS handshake of an accepted connection, on a thread of its own
  // (at most kMaxHandshakes at once; beyond, the connection is refused).
  void StartHandshake(UniqueFd c, std::string peer) {
    SslCtxPtr ctx;
    {
      std::lock_guard lk(mu_);
      if (handshaking_ >= kMaxHandshakes) {
        ready_.push_back(Error(ErrorCode::kRefused,
                               "refused " + peer + ": too many TLS handshakes in progress"));
        cv_.notify_all();
        return;
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
      StartHandshake(std::move(c), std::move(peer));
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
