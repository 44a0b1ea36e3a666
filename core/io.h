// Positional file I/O through io_uring where the kernel allows it, and through
// pread/pwrite otherwise. The choice is made at run time: containers often
// forbid io_uring (seccomp, io_uring_disabled), so a failed probe falls back
// silently and never fails the caller. ForcePreadFileIo forces the fallback
// (the binary sets it from WALFERRY_IO=pread; library code reads no environment).
// Thread-safety: a FileIo is not thread-safe (it owns one ring); use one per thread.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "core/result.h"

namespace walferry {

class FileIo {
 public:
  virtual ~FileIo() = default;
  // Reads until `buf` is full or EOF; returns bytes read (short only at EOF).
  virtual Result<std::size_t> ReadAt(int fd, std::span<std::byte> buf, off_t offset,
                                     std::string_view what) = 0;
  // Writes all of `buf` at `offset`.
  virtual Status WriteAt(int fd, std::span<const std::byte> buf, off_t offset,
                         std::string_view what) = 0;
  // One positional write of (a prefix of) `buf` at `offset`, EINTR/EAGAIN
  // retried: the bytes written (a short count is not an error), or -errno.
  // The raw call behind FileSystem::WriteAt (core/fs.h), whose caller loops.
  virtual ssize_t WriteSomeAt(int fd, std::span<const std::byte> buf, off_t offset) = 0;
  // "io_uring" or "pread", for logs and tests.
  virtual std::string_view name() const = 0;
};

// Never fails: returns the io_uring implementation when a ring can be set up
// and a probe read works, the pread/pwrite one otherwise.
std::unique_ptr<FileIo> MakeFileIo();
// Always the pread/pwrite implementation (tests, and callers that need it).
std::unique_ptr<FileIo> MakePreadFileIo();
// Process-wide: when set, MakeFileIo returns the pread/pwrite implementation.
// Set once at start-up (cli/main.cc) before threads start; safe to read from any thread.
void ForcePreadFileIo(bool force);

}  // namespace walferry
