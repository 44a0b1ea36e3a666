#include "core/fs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

namespace walferry {
namespace {

class PosixFileSystem final : public FileSystem {
 public:
  int OpenAt(int dirfd, const char* name, int flags, mode_t mode, UniqueFd* out) override {
    int fd;
    do {
      fd = ::openat(dirfd, name, flags | O_CLOEXEC, mode);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return errno;
    out->Reset(fd);
    return 0;
  }
  ssize_t Read(int fd, void* buf, std::size_t n) override {
    ssize_t r;
    do {
      r = ::read(fd, buf, n);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
  }
  ssize_t Write(int fd, const void* buf, std::size_t n) override {
    ssize_t r;
    do {
      r = ::write(fd, buf, n);
    } while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
  }
  ssize_t WriteAt(FileIo& io, int fd, std::span<const std::byte> buf, off_t offset) override {
    return io.WriteSomeAt(fd, buf, offset);
  }
  int Fsync(int fd) override { return ::fsync(fd) == 0 ? 0 : errno; }
  int Fdatasync(int fd) override { return ::fdatasync(fd) == 0 ? 0 : errno; }
  int Ftruncate(int fd, off_t length) override {
    int rc;
    do {
      rc = ::ftruncate(fd, length);
    } while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
  }
  int Fchmod(int fd, mode_t mode) override { return ::fchmod(fd, mode) == 0 ? 0 : errno; }
  int Rename(int from_dir, const char* from, int to_dir, const char* to, bool no_replace) override {
    int rc = no_replace ? ::renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE)
                        : ::renameat(from_dir, from, to_dir, to);
    return rc == 0 ? 0 : errno;
  }
  int Link(int from_dir, const char* from, int to_dir, const char* to) override {
    return ::linkat(from_dir, from, to_dir, to, 0) == 0 ? 0 : errno;
  }
  int Unlink(int dirfd, const char* name) override {
    return ::unlinkat(dirfd, name, 0) == 0 ? 0 : errno;
  }
  int Mkdir(int dirfd, const char* name, mode_t mode) override {
    return ::mkdirat(dirfd, name, mode) == 0 ? 0 : errno;
  }
};

std::string Shown(std::string_view s) { return std::string(s); }

// The directory part of `to` ("" when `to` is a bare name in its directory).
std::string ParentOf(const std::string& to) {
  auto pos = to.rfind('/');
  if (pos == std::string::npos) return "";
  if (pos == 0) return "/";
  return to.substr(0, pos);
}

}  // namespace

FileSystem& PosixFs() {
  static PosixFileSystem fs;  // stateless
  return fs;
}

Result<UniqueFd> OpenAt(FileSystem& fs, int dirfd, const std::string& name, int flags,
                        mode_t mode, std::string_view shown) {
  UniqueFd fd;
  if (int err = fs.OpenAt(dirfd, name.c_str(), flags, mode, &fd); err != 0) {
    return ErrnoError(err, "open " + Shown(shown));
  }
  return fd;
}

Result<std::string> ReadSmallAt(FileSystem& fs, int dirfd, const std::string& name,
                                std::size_t limit, std::string_view shown, int flags,
                                ErrorCode too_large) {
  WF_ASSIGN(UniqueFd fd, OpenAt(fs, dirfd, name, O_RDONLY | flags, 0, shown));
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = fs.Read(fd.get(), buf, sizeof buf);
    if (n < 0) return ErrnoError(static_cast<int>(-n), "read " + Shown(shown));
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > limit) return Error(too_large, Shown(shown) + ": file too large");
  }
  return out;
}

Status WriteAll(FileSystem& fs, int fd, std::span<const std::byte> data, std::string_view shown) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = fs.Write(fd, data.data() + done, data.size() - done);
    if (n < 0) return ErrnoError(static_cast<int>(-n), "write " + Shown(shown));
    if (n == 0) return ErrnoError(EIO, "write " + Shown(shown));  // no progress
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status WriteAllAt(FileSystem& fs, FileIo& io, int fd, std::span<const std::byte> data, off_t offset,
                  std::string_view shown) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = fs.WriteAt(io, fd, data.subspan(done), offset + static_cast<off_t>(done));
    if (n < 0) return ErrnoError(static_cast<int>(-n), "write " + Shown(shown));
    if (n == 0) return ErrnoError(EIO, "write " + Shown(shown));  // no progress
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

Status FsyncDir(FileSystem& fs, int dirfd, std::string_view shown) {
  if (int err = fs.Fsync(dirfd); err != 0) return ErrnoError(err, "fsync directory of " + Shown(shown));
  return Status::Ok();
}

Status RenameUnsynced(FileSystem& fs, int from_dir, const std::string& from, int to_dir,
                      const std::string& to, Replace replace, std::string_view shown) {
  const bool no_replace = replace == Replace::kNo;
  int err = fs.Rename(from_dir, from.c_str(), to_dir, to.c_str(), no_replace);
  if (no_replace && (err == EINVAL || err == ENOSYS)) {
    // The one fallback, for filesystems without RENAME_NOREPLACE.
    err = fs.Link(from_dir, from.c_str(), to_dir, to.c_str());
    if (err == 0) (void)fs.Unlink(from_dir, from.c_str());  // garbage if it fails
  }
  if (err == EEXIST) return Error(ErrorCode::kExists, Shown(shown) + " already exists");
  if (err != 0) return ErrnoError(err, "rename to " + Shown(shown));
  return Status::Ok();
}

Status RenameDurable(FileSystem& fs, int file_fd, int from_dir, const std::string& from,
                     int to_dir, const std::string& to, Replace replace, std::string_view shown) {
  // 1. The data first: a rename can reach the disk before the data it names.
  if (file_fd >= 0) {
    if (int err = fs.Fsync(file_fd); err != 0) return ErrnoError(err, "fsync " + Shown(shown));
  }
  // 2. The rename, never replacing when asked not to.
  WF_TRY(RenameUnsynced(fs, from_dir, from, to_dir, to, replace, shown));
  // 3. The directory entry.
  const std::string parent = ParentOf(to);
  if (parent.empty() && to_dir != AT_FDCWD) return FsyncDir(fs, to_dir, shown);
  WF_ASSIGN(UniqueFd dir, OpenAt(fs, to_dir, parent.empty() ? "." : parent,
                                 O_RDONLY | O_DIRECTORY, 0, "directory of " + Shown(shown)));
  return FsyncDir(fs, dir.get(), shown);
}

Result<TempFile> TempFile::Create(FileSystem& fs, int dirfd, std::string_view stem, mode_t mode,
                                  std::string_view shown_dir) {
  std::random_device rd;
  const std::string base(stem.substr(0, 200));
  for (int attempt = 0; attempt < 16; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%08x.wftmp", rd());
    std::string name = "." + base + suffix;
    std::string shown = shown_dir.empty() ? name : Shown(shown_dir) + "/" + name;
    UniqueFd fd;
    int err = fs.OpenAt(dirfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode, &fd);
    if (err == 0) return TempFile(fs, dirfd, std::move(fd), std::move(name), std::move(shown));
    if (err != EEXIST) return ErrnoError(err, "create " + shown);
  }
  return Error(ErrorCode::kIo, "cannot create a temporary file in " + Shown(shown_dir));
}

TempFile::TempFile(TempFile&& o) noexcept
    : fs_(o.fs_), dirfd_(o.dirfd_), fd_(std::move(o.fd_)), name_(std::move(o.name_)),
      shown_(std::move(o.shown_)), placed_(o.placed_) {
  o.placed_ = true;  // the moved-from object owns nothing
}

TempFile::~TempFile() {
  if (!placed_) (void)fs_->Unlink(dirfd_, name_.c_str());
}

Status TempFile::Commit(int to_dir, const std::string& to, Replace replace, std::string_view shown,
                        bool durable) {
  if (durable) {
    WF_TRY(RenameDurable(*fs_, fd_.get(), dirfd_, name_, to_dir, to, replace, shown));
  } else {
    WF_TRY(RenameUnsynced(*fs_, dirfd_, name_, to_dir, to, replace, shown));
  }
  placed_ = true;
  fd_.Reset();
  return Status::Ok();
}

Status WriteAtomic(FileSystem& fs, int dirfd, const std::string& name, std::string_view content,
                   mode_t mode, Replace replace, std::string_view shown) {
  std::string dir_part, base = name;
  if (auto pos = name.rfind('/'); pos != std::string::npos) {
    dir_part = pos == 0 ? "/" : name.substr(0, pos);
    base = name.substr(pos + 1);
  }
  // The temp file lives beside the target (same directory, same filesystem).
  UniqueFd dir_holder;
  int temp_dir = dirfd;
  if (!dir_part.empty()) {
    WF_ASSIGN(dir_holder, OpenAt(fs, dirfd, dir_part, O_RDONLY | O_DIRECTORY, 0, dir_part));
    temp_dir = dir_holder.get();
  }
  WF_ASSIGN(TempFile tmp, TempFile::Create(fs, temp_dir, base, mode, dir_part));
  if (int err = fs.Fchmod(tmp.fd(), mode); err != 0) return ErrnoError(err, "chmod " + tmp.shown());
  WF_TRY(tmp.Write(std::as_bytes(std::span(content.data(), content.size()))));
  return tmp.Commit(temp_dir, base, replace, shown);
}

}  // namespace walferry
