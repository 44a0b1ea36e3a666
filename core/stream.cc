#include "core/stream.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

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
      : fd_(fd), owned_(owned ? fd : -1), name_(std::move(name)) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override { return ReadFull(fd_, buf, name_); }
  const std::string& name() const override { return name_; }

 private:
  int fd_;
  UniqueFd owned_;  // closes fd_ when the source owns it
  std::string name_;
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

AtomicFile::AtomicFile(UniqueFd dir, TempFile temp, std::string path, bool overwrite)
    : dir_(std::move(dir)),
      temp_(std::move(temp)),
      path_(std::move(path)),
      temp_path_(DirName(path_) + "/" + temp_.name()),
      overwrite_(overwrite) {}

Result<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path, bool overwrite,
                                                        mode_t mode) {
  const std::string dir = DirName(path);
  WF_ASSIGN(UniqueFd dir_fd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  WF_ASSIGN(TempFile temp, TempFile::Create(PosixFs(), dir_fd.get(), BaseName(path), mode, dir));
  return std::unique_ptr<AtomicFile>(
      new AtomicFile(std::move(dir_fd), std::move(temp), path, overwrite));
}

Status AtomicFile::Commit(bool durable) {
  Status st = temp_.Commit(dir_.get(), BaseName(path_), overwrite_ ? Replace::kYes : Replace::kNo,
                           path_, durable);
  if (!st.ok() && st.error().code() == ErrorCode::kExists) {
    return Error(ErrorCode::kExists, path_ + " already exists (use -f to overwrite)");
  }
  return st;
}

}  // namespace walferry
