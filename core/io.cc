#include "core/io.h"

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>

#include "core/fd.h"

namespace walferry {
namespace {

class PreadIo final : public FileIo {
 public:
  Result<std::size_t> ReadAt(int fd, std::span<std::byte> buf, off_t offset,
                             std::string_view what) override {
    return PreadFull(fd, buf, offset, what);
  }
  Status WriteAt(int fd, std::span<const std::byte> buf, off_t offset,
                 std::string_view what) override {
    return PwriteFull(fd, buf, offset, what);
  }
  ssize_t WriteSomeAt(int fd, std::span<const std::byte> buf, off_t offset) override {
    ssize_t r;
    do {
      r = ::pwrite(fd, buf.data(), buf.size(), offset);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
  }
  std::string_view name() const override { return "pread"; }
};

class UringIo final : public FileIo {
 public:
  UringIo() = default;
  ~UringIo() override {
    if (ready_) io_uring_queue_exit(&ring_);
  }

  // Returns 0 or a negative errno.
  int Init() {
    int rc = io_uring_queue_init(8, &ring_, 0);
    if (rc < 0) return rc;
    ready_ = true;
    // Probe: a NOP must complete; some sandboxes allow setup but not submission.
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return -EBUSY;
    io_uring_prep_nop(sqe);
    int res = 0;
    rc = SubmitAndWait(&res);
    return rc < 0 ? rc : res;
  }

  Result<std::size_t> ReadAt(int fd, std::span<std::byte> buf, off_t offset,
                             std::string_view what) override {
    std::size_t done = 0;
    while (done < buf.size()) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_read(sqe, fd, buf.data() + done, static_cast<unsigned>(buf.size() - done),
                         static_cast<__u64>(offset) + done);
      int res = 0;
      int rc = SubmitAndWait(&res);
      if (rc < 0) return ErrnoError(-rc, "io_uring read " + std::string(what));
      if (res == -EINTR || res == -EAGAIN) continue;
      if (res < 0) return ErrnoError(-res, "read " + std::string(what));
      if (res == 0) break;
      done += static_cast<std::size_t>(res);
    }
    return done;
  }

  Status WriteAt(int fd, std::span<const std::byte> buf, off_t offset,
                 std::string_view what) override {
    std::size_t done = 0;
    while (done < buf.size()) {
      ssize_t res = WriteSomeAt(fd, buf.subspan(done), offset + static_cast<off_t>(done));
      if (res < 0) return ErrnoError(static_cast<int>(-res), "write " + std::string(what));
      if (res == 0) return ErrnoError(EIO, "write " + std::string(what));
      done += static_cast<std::size_t>(res);
    }
    return Status::Ok();
  }

  ssize_t WriteSomeAt(int fd, std::span<const std::byte> buf, off_t offset) override {
    for (;;) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      io_uring_prep_write(sqe, fd, buf.data(), static_cast<unsigned>(std::min<std::size_t>(buf.size(), 1u << 30)),
                          static_cast<__u64>(offset));
      int res = 0;
      int rc = SubmitAndWait(&res);
      if (rc < 0) return rc;
      if (res == -EINTR || res == -EAGAIN) continue;
      return res;
    }
  }

  std::string_view name() const override { return "io_uring"; }

 private:
  int SubmitAndWait(int* res) {
    int rc;
    do {
      rc = io_uring_submit_and_wait(&ring_, 1);
    } while (rc == -EINTR);
    if (rc < 0) return rc;
    io_uring_cqe* cqe = nullptr;
    do {
      rc = io_uring_wait_cqe(&ring_, &cqe);
    } while (rc == -EINTR);
    if (rc < 0) return rc;
    *res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return 0;
  }

  io_uring ring_{};
  bool ready_ = false;
};

}  // namespace

std::unique_ptr<FileIo> MakePreadFileIo() { return std::make_unique<PreadIo>(); }

namespace {
std::atomic<bool> force_pread{false};
}  // namespace

void ForcePreadFileIo(bool force) { force_pread.store(force, std::memory_order_relaxed); }

std::unique_ptr<FileIo> MakeFileIo() {
  if (force_pread.load(std::memory_order_relaxed)) return MakePreadFileIo();
  auto uring = std::make_unique<UringIo>();
  if (uring->Init() == 0) return uring;
  return MakePreadFileIo();
}

}  // namespace walferry
