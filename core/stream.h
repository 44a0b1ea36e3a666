// Byte streams: the small I/O interfaces the pipelines read from and write to,
// so tests can inject short reads, errors and ENOSPC without touching the world.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "core/fd.h"
#include "core/fs.h"
#include "core/io.h"
#include "core/path.h"  // DirName, BaseName
#include "core/result.h"

namespace walferry {

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Fills `buf` completely unless the stream ends; returns bytes read (0 = EOF).
  virtual Result<std::size_t> Read(std::span<std::byte> buf) = 0;
  // Total size when known up front (regular files), -1 for pipes.
  virtual long long SizeHint() const { return -1; }
  // Human name for messages ("stdin", a path).
  virtual const std::string& name() const = 0;
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Write(std::span<const std::byte> data) = 0;
  // Flushes; for files, makes the data durable when the sink was asked to.
  virtual Status Finish() = 0;
};

// Reads a regular file through FileIo (io_uring or pread), or a pipe/tty with read(2).
// Does not take ownership when `owned` is false (stdin).
Result<std::unique_ptr<ByteSource>> OpenSource(const std::string& path);  // "-" = stdin
std::unique_ptr<ByteSource> FdSource(int fd, std::string name, bool owned);

// Writes to an fd (stdout, a pipe) with write(2). Not owned.
std::unique_ptr<ByteSink> FdSink(int fd, std::string name);

// A file written under a temporary name in the target's directory and moved to
// its final name only by Commit (fsync file, rename, fsync directory). If the
// object is destroyed without Commit, the temp file is removed: the final name
// never holds a partial file.
class AtomicFile final : public ByteSink {
 public:
  // overwrite=false: Commit fails with kExists if `path` exists (RENAME_NOREPLACE).
  static Result<std::unique_ptr<AtomicFile>> Create(const std::string& path, bool overwrite,
                                                     mode_t mode = 0644);
  ~AtomicFile() override = default;  // the TempFile removes an uncommitted temp
  Status Write(std::span<const std::byte> data) override { return temp_.Write(data); }
  Status Finish() override { return Status::Ok(); }
  // RenameDurable (core/fs.h) of the temp file to the final name.
  // durable=false: RenameUnsynced instead (no fsync), only for a file whose
  // reader makes it durable itself (restore_command's target, pg/archive_ops.cc).
  Status Commit(bool durable = true);
  int fd() const { return temp_.fd(); }
  const std::string& temp_path() const { return temp_path_; }

 private:
  AtomicFile(UniqueFd dir, TempFile temp, std::string path, bool overwrite);
  UniqueFd dir_;
  TempFile temp_;
  std::string path_, temp_path_;
  bool overwrite_;
};


}  // namespace walferry
