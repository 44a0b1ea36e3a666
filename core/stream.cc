#include "core/stream.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <random>

namespace walferry {
namespace {

class FileSourceImpl final : public ByteSource {
 public:
  FileSourceImpl(UniqueFd fd, std::string name, long long size)
      : fd_(std::move(fd)), name_(std::move(name)), size_(size), io_(MakeFileIo()) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    auto r = io_->ReadAt(fd_.get(), buf, offset_, name_);
    if (r.ok()) offset_ += static_cast<off_t>(*r);
    return r;
  }
  long long SizeHint() const override { return size_; }
  const std::string& name() const override { return name_; }

 private:
  UniqueFd fd_;
  std::string name_;
  long long size_;
  off_t offset_ = 0;
  std::unique_ptr<FileIo> io_;
};

class PipeSourceImpl final : public ByteSource {
 public:
  PipeSourceImpl(int fd, std::string name, bool owned)
      : fd_(fd), name_(std::move(name)), owned_(owned) {}
  ~PipeSourceImpl() override {
    if (owned_) ::close(fd_);
  }
  Result<std::size_t> Read(std::span<std::byte> buf) override { return ReadFull(fd_, buf, name_); }
  const std::string& name() const override { return name_; }

 private:
  int fd_;
  std::string name_;
  bool owned_;
};

class FdSinkImpl final : public ByteSink {
 public:
  FdSinkImpl(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  Status Write(std::span<const std::byte> data) override { return WriteFull(fd_, data, name_); }
  Status Finish() override { return Status::Ok(); }

 private:
  int fd_;
  std::string name_;
};

}  // namespace

std::unique_ptr<ByteSource> FdSource(int fd, std::string name, bool owned) {
  struct stat st{};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    off_t pos = ::lseek(fd, 0, SEEK_CUR);
    if (pos == 0) {
      int dup = owned ? fd : ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
      if (dup >= 0) return std::make_unique<FileSourceImpl>(UniqueFd(dup), std::move(name), st.st_size);
    }
  }
  return std::make_unique<PipeSourceImpl>(fd, std::move(name), owned);
}

Result<std::unique_ptr<ByteSource>> OpenSource(const std::string& path) {
  if (path == "-") return FdSource(STDIN_FILENO, "stdin", false);
  WF_ASSIGN(UniqueFd fd, OpenFile(path, O_RDONLY));
  return FdSource(fd.Release(), path, true);
}

std::unique_ptr<ByteSink> FdSink(int fd, std::string name) {
  return std::make_unique<FdSinkImpl>(fd, std::move(name));
}

std::string DirName(const std::string& path) {
  auto pos = path.rfind('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string BaseName(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path, bool overwrite,
                                                        mode_t mode) {
  std::random_device rd;
  std::string dir = DirName(path);
  // The temp name adds 16 bytes to the final one; keep it within NAME_MAX (255)
  // even for the longest names a receiver accepts.
  std::string stem = BaseName(path).substr(0, 200);
  for (int attempt = 0; attempt < 16; ++attempt) {
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%08x.wftmp", rd());
    std::string temp = dir + "/." + stem + suffix;
    auto fd = OpenFile(temp, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd.ok()) {
      return std::unique_ptr<AtomicFile>(
          new AtomicFile(std::move(fd).value(), std::move(temp), path, overwrite));
    }
    if (fd.error().code() != ErrorCode::kExists) return fd.error();
  }
  return Error(ErrorCode::kIo, "cannot create a temporary file next to " + path);
}

AtomicFile::~AtomicFile() {
  if (!committed_) ::unlink(temp_.c_str());
}

Status AtomicFile::Write(std::span<const std::byte> data) {
  return WriteFull(fd_.get(), data, temp_);
}

Status AtomicFile::Commit(bool durable) {
  if (durable) WF_TRY(Fsync(fd_.get(), temp_));
  fd_.Reset();
  if (overwrite_) {
    if (::rename(temp_.c_str(), path_.c_str()) != 0) return ErrnoError(errno, "rename to " + path_);
  } else {
    int rc = static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, temp_.c_str(), AT_FDCWD,
                                        path_.c_str(), RENAME_NOREPLACE));
    int err = rc == 0 ? 0 : errno;
    if (err == EINVAL || err == ENOSYS) {
      // The filesystem (or an old kernel) lacks RENAME_NOREPLACE: link(2) also
      // refuses an existing target and is atomic; then drop the temp name.
      rc = ::link(temp_.c_str(), path_.c_str());
      err = rc == 0 ? 0 : errno;
      if (rc == 0) ::unlink(temp_.c_str());
    }
    if (err == EEXIST) {
      return Error(ErrorCode::kExists, path_ + " already exists (use -f to overwrite)");
    }
    if (err != 0) return ErrnoError(err, "rename to " + path_);
  }
  committed_ = true;
  return durable ? FsyncDir(DirName(path_)) : Status::Ok();
}

}  // namespace walferry
