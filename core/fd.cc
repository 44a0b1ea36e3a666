#include "core/fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/fs.h"

namespace walferry {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<UniqueFd> OpenFile(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoError(errno, "open " + path);
  return UniqueFd(fd);
}

Result<UniqueFd> OpenAt(int dirfd, const std::string& name, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::openat(dirfd, name.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return ErrnoError(errno, "open " + name);
  return UniqueFd(fd);
}

Result<std::size_t> ReadFull(int fd, std::span<std::byte> buf, std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, std::string("read ") + std::string(what));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

Status WriteFull(int fd, std::span<const std::byte> buf, std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, std::string("write ") + std::string(what));
    }
    if (n == 0) return ErrnoError(EIO, std::string("write ") + std::string(what));  // no progress
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Result<std::size_t> PreadFull(int fd, std::span<std::byte> buf, off_t offset,
                              std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done,
                        offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, std::string("read ") + std::string(what));
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

Status PwriteFull(int fd, std::span<const std::byte> buf, off_t offset, std::string_view what) {
  std::size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done,
                         offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError(errno, std::string("write ") + std::string(what));
    }
    if (n == 0) return ErrnoError(EIO, std::string("write ") + std::string(what));  // no progress
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status Fsync(int fd, std::string_view what) {
  if (::fsync(fd) != 0) return ErrnoError(errno, std::string("fsync ") + std::string(what));
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  WF_ASSIGN(UniqueFd fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  return FsyncDir(PosixFs(), fd.get(), dir);
}

Result<std::string> ReadSmallFile(const std::string& path, std::size_t limit) {
  return ReadSmallAt(PosixFs(), AT_FDCWD, path, limit, path, 0, ErrorCode::kInvalidArgument);
}

}  // namespace walferry
