// Move-only owner of a POSIX file descriptor, and the few syscalls every module
// needs, converted to Result/Status in one place.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace walferry {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) { Reset(); fd_ = o.Release(); }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() { int f = fd_; fd_ = -1; return f; }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Owner of a DIR* (opendir/fdopendir); closedir on destruction.
struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// open(2)/openat(2) with O_CLOEXEC. `what` names the file in the error message.
Result<UniqueFd> OpenFile(const std::string& path, int flags, mode_t mode = 0644);
Result<UniqueFd> OpenAt(int dirfd, const std::string& name, int flags, mode_t mode = 0644);

// Reads until `buf` is full or EOF; returns bytes read (short only at EOF). Retries EINTR.
Result<std::size_t> ReadFull(int fd, std::span<std::byte> buf, std::string_view what);
// Writes all of `buf`, retrying short writes and EINTR.
Status WriteFull(int fd, std::span<const std::byte> buf, std::string_view what);
// pread/pwrite variants at an absolute offset.
Result<std::size_t> PreadFull(int fd, std::span<std::byte> buf, off_t offset, std::string_view what);
Status PwriteFull(int fd, std::span<const std::byte> buf, off_t offset, std::string_view what);

Status Fsync(int fd, std::string_view what);
// fsync of the directory containing entries just created/renamed.
Status FsyncDir(const std::string& dir);

// Whole-file helpers for small files (configs, manifests, certificates).
Result<std::string> ReadSmallFile(const std::string& path, std::size_t limit = 16 << 20);

}  // namespace walferry
