// The socket BIO OpenSSL talks through, poll waits, and what every Conn shares.
#include "transport/conn_internal.h"

namespace walferry::transport {
namespace internal {

namespace {

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


}  // namespace

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

// Best effort: a socket without these options still works.
void SetSocketOptions(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
}

}  // namespace internal

using namespace internal;

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

}  // namespace walferry::transport
