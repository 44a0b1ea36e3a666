#include "fault_fs.h"

#include <unistd.h>

namespace walferry::faults {

void FaultFs::Inject(const Fault& f) {
  std::lock_guard lk(mu_);
  fault_ = f;
  armed_ = true;
  fired_ = false;
  seen_ = 0;
}

void FaultFs::Clear() {
  std::lock_guard lk(mu_);
  armed_ = false;
}

bool FaultFs::fired() const {
  std::lock_guard lk(mu_);
  return fired_;
}

int FaultFs::calls(FsOp op) const {
  std::lock_guard lk(mu_);
  return counts_[static_cast<int>(op)];
}

FaultFs::Action FaultFs::Next(FsOp op) {
  std::lock_guard lk(mu_);
  ++counts_[static_cast<int>(op)];
  ++counts_[static_cast<int>(FsOp::kAny)];
  if (!armed_ || (fault_.op != FsOp::kAny && fault_.op != op)) return Action::kCall;
  ++seen_;
  const bool write = op == FsOp::kWrite || op == FsOp::kWriteAt;
  // The write after a short one: the disk is full now.
  if (fault_.kind == FaultKind::kShortThenErrno && fired_ && seen_ == fault_.nth + 1) return Action::kFail;
  if (seen_ < fault_.nth || (seen_ > fault_.nth && !fault_.sticky)) return Action::kCall;
  fired_ = true;
  switch (fault_.kind) {
    case FaultKind::kErrno: return Action::kFail;
    case FaultKind::kShortWrite: return write ? Action::kShort : Action::kCall;
    case FaultKind::kShortThenErrno: return write ? Action::kShort : Action::kFail;
    case FaultKind::kCrashBefore: return Action::kCrashBefore;
    case FaultKind::kCrashAfter: return Action::kCrashAfter;
  }
  return Action::kCall;
}

template <typename Call>
auto FaultFs::Run(FsOp op, Call call, decltype(call()) failed) -> decltype(call()) {
  switch (Next(op)) {
    case Action::kFail: return failed;
    case Action::kCrashBefore: ::_exit(fault_.exit_code);
    case Action::kCrashAfter: {
      (void)call();
      ::_exit(fault_.exit_code);
    }
    case Action::kCall:
    case Action::kShort: break;
  }
  return call();
}

int FaultFs::OpenAt(int dirfd, const char* name, int flags, mode_t mode, UniqueFd* out) {
  return Run(FsOp::kOpen, [&] { return real_.OpenAt(dirfd, name, flags, mode, out); }, fault_.err);
}

ssize_t FaultFs::Read(int fd, void* buf, std::size_t n) {
  return Run(FsOp::kRead, [&] { return real_.Read(fd, buf, n); }, -static_cast<ssize_t>(fault_.err));
}

ssize_t FaultFs::Write(int fd, const void* buf, std::size_t n) {
  Action a = Next(FsOp::kWrite);
  switch (a) {
    case Action::kFail: return -static_cast<ssize_t>(fault_.err);
    case Action::kShort: return real_.Write(fd, buf, n > 1 ? n / 2 : n);
    case Action::kCrashBefore: ::_exit(fault_.exit_code);
    case Action::kCrashAfter: {
      (void)real_.Write(fd, buf, n);
      ::_exit(fault_.exit_code);
    }
    case Action::kCall: break;
  }
  return real_.Write(fd, buf, n);
}

ssize_t FaultFs::WriteAt(FileIo& io, int fd, std::span<const std::byte> buf, off_t offset) {
  switch (Next(FsOp::kWriteAt)) {
    case Action::kFail: return -static_cast<ssize_t>(fault_.err);
    case Action::kShort: return real_.WriteAt(io, fd, buf.first(buf.size() > 1 ? buf.size() / 2 : buf.size()), offset);
    case Action::kCrashBefore: ::_exit(fault_.exit_code);
    case Action::kCrashAfter: {
      (void)real_.WriteAt(io, fd, buf, offset);
      ::_exit(fault_.exit_code);
    }
    case Action::kCall: break;
  }
  return real_.WriteAt(io, fd, buf, offset);
}

int FaultFs::Fsync(int fd) {
  return Run(FsOp::kFsync, [&] { return real_.Fsync(fd); }, fault_.err);
}

int FaultFs::Fdatasync(int fd) {
  return Run(FsOp::kFsync, [&] { return real_.Fdatasync(fd); }, fault_.err);
}

int FaultFs::Ftruncate(int fd, off_t length) {
  return Run(FsOp::kTruncate, [&] { return real_.Ftruncate(fd, length); }, fault_.err);
}

int FaultFs::Fchmod(int fd, mode_t mode) {
  return Run(FsOp::kFchmod, [&] { return real_.Fchmod(fd, mode); }, fault_.err);
}

int FaultFs::Rename(int from_dir, const char* from, int to_dir, const char* to, bool no_replace) {
  return Run(FsOp::kRename, [&] { return real_.Rename(from_dir, from, to_dir, to, no_replace); },
             fault_.err);
}

int FaultFs::Link(int from_dir, const char* from, int to_dir, const char* to) {
  return Run(FsOp::kLink, [&] { return real_.Link(from_dir, from, to_dir, to); }, fault_.err);
}

int FaultFs::Unlink(int dirfd, const char* name) {
  return Run(FsOp::kUnlink, [&] { return real_.Unlink(dirfd, name); }, fault_.err);
}

int FaultFs::Mkdir(int dirfd, const char* name, mode_t mode) {
  return Run(FsOp::kMkdir, [&] { return real_.Mkdir(dirfd, name, mode); }, fault_.err);
}

}  // namespace walferry::faults
