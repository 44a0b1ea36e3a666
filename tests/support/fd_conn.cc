#include "fd_conn.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace walferry::transport {
namespace {

class FdConn final : public Conn {
 public:
  FdConn(UniqueFd fd, std::string cluster, std::string peer)
      : fd_(std::move(fd)), cluster_(std::move(cluster)), peer_(std::move(peer)) {}

  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    if (buf.empty()) return std::size_t{0};
    for (;;) {
      WF_TRY(WaitFor(POLLIN));
      ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno == EINTR || errno == EAGAIN) continue;
      return ErrnoError(errno, "read from " + peer_);
    }
  }

  Status WriteAll(std::span<const std::byte> data) override {
    std::size_t done = 0;
    while (done < data.size()) {
      WF_TRY(WaitFor(POLLOUT));
      ssize_t n = ::send(fd_.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return ErrnoError(errno, "write to " + peer_);
      }
      done += static_cast<std::size_t>(n);
    }
    return Status::Ok();
  }

  void Shutdown() override { ::shutdown(fd_.get(), SHUT_RDWR); }
  const std::string& peer_cluster() const override { return cluster_; }
  std::string peer_address() const override { return peer_; }
  void SetTimeout(std::chrono::milliseconds t) override { timeout_ms_ = static_cast<int>(t.count()); }

 private:
  Status WaitFor(short events) {
    pollfd p{fd_.get(), events, 0};
    for (;;) {
      int r = ::poll(&p, 1, timeout_ms_.load());
      if (r > 0) return Status::Ok();
      if (r == 0) return Error(ErrorCode::kNetwork, "timed out waiting for " + peer_);
      if (errno != EINTR) return ErrnoError(errno, "poll " + peer_);
    }
  }

  UniqueFd fd_;
  std::string cluster_, peer_;
  std::atomic<int> timeout_ms_{60000};
};

}  // namespace

std::unique_ptr<Conn> MakeFdConn(UniqueFd fd, std::string peer_cluster, std::string peer_address) {
  return std::make_unique<FdConn>(std::move(fd), std::move(peer_cluster), std::move(peer_address));
}

}  // namespace walferry::transport
