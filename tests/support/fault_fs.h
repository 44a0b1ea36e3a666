// A FileSystem (core/fs.h) for tests that injects faults into the real one:
// the N-th call of one kind fails with an errno (ENOSPC, EIO, EDQUOT, ...),
// writes only part of its buffer (a short write, alone or followed by an
// errno on the next write, as a disk filling up does), or ends the process
// with _exit before or after making the call (a crash point, for a forked
// child). kWriteAt is the positional data write (an incoming transfer's temp
// data); kWrite the sequential one (manifests, system identifiers, info files);
// Fdatasync counts as kFsync.
//
// Usage:
//   FaultFs fs;                                     // wraps PosixFs()
//   fs.Inject({.op = FsOp::kRename, .nth = 1, .err = EINVAL});
//   auto archive = archive::Archive::Open(root, format, fs);
//   ... fs.fired() tells whether the fault was reached; fs.calls(FsOp::kFsync)
//   counts calls (all of them, faulted or not), so a test can first run an
//   operation clean to count its calls and then fail each one in turn.
// One fault is pending at a time (Inject replaces it); with `sticky` every
// matching call from the N-th on fails. Thread-safe (one mutex); the FaultFs
// must outlive every object that was given it.
#pragma once

#include <cerrno>
#include <mutex>

#include "core/fs.h"

namespace walferry::faults {

enum class FsOp : unsigned char {
  kAny, kOpen, kRead, kWrite, kWriteAt, kFsync, kTruncate, kFchmod, kRename, kLink, kUnlink, kMkdir,
  kCount  // not an operation: the number of them
};

enum class FaultKind : unsigned char {
  kErrno,       // the call fails with `err` and has no effect
  kShortWrite,  // kWrite/kWriteAt only: writes half the buffer (at least 1 byte) and reports it
  kShortThenErrno,  // kWrite/kWriteAt: the short write, then the next write of that op fails with `err`
  kCrashBefore, // _exit(exit_code) instead of making the call
  kCrashAfter,  // make the call, then _exit(exit_code)
};

struct Fault {
  FsOp op = FsOp::kAny;
  int nth = 1;  // 1-based, counting calls of `op` made after Inject
  FaultKind kind = FaultKind::kErrno;
  int err = EIO;
  int exit_code = 86;
  bool sticky = false;
};

class FaultFs final : public FileSystem {
 public:
  explicit FaultFs(FileSystem& real = PosixFs()) : real_(real) {}

  void Inject(const Fault& f);
  void Clear();
  bool fired() const;
  int calls(FsOp op) const;  // kAny: all calls

  int OpenAt(int dirfd, const char* name, int flags, mode_t mode, UniqueFd* out) override;
  ssize_t Read(int fd, void* buf, std::size_t n) override;
  ssize_t Write(int fd, const void* buf, std::size_t n) override;
  ssize_t WriteAt(FileIo& io, int fd, std::span<const std::byte> buf, off_t offset) override;
  int Fsync(int fd) override;
  int Fdatasync(int fd) override;
  int Ftruncate(int fd, off_t length) override;
  int Fchmod(int fd, mode_t mode) override;
  int Rename(int from_dir, const char* from, int to_dir, const char* to, bool no_replace) override;
  int Link(int from_dir, const char* from, int to_dir, const char* to) override;
  int Unlink(int dirfd, const char* name) override;
  int Mkdir(int dirfd, const char* name, mode_t mode) override;

 private:
  // What the call of `op` about to be made must do.
  enum class Action { kCall, kFail, kShort, kCrashBefore, kCrashAfter };
  Action Next(FsOp op);
  template <typename Call>
  auto Run(FsOp op, Call call, decltype(call()) failed) -> decltype(call());

  FileSystem& real_;
  mutable std::mutex mu_;
  Fault fault_;
  bool armed_ = false, fired_ = false;
  int seen_ = 0;  // calls of fault_.op since Inject
  int counts_[static_cast<int>(FsOp::kCount)] = {};
};

}  // namespace walferry::faults
