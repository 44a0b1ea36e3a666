// The filesystem seam: the few directory-relative calls that place files
// durably, behind one small interface, and the policy functions built on it.
//
// FileSystem is a table of raw calls (open, read, write, positional write,
// fsync, fdatasync, ftruncate, rename, link, unlink, mkdir). Each returns 0 (or a byte count) on success and a positive errno
// value on failure; none of them decides anything. The policy lives in the free
// functions below, which take the FileSystem to use: RenameDurable owns the
// crash guarantee of every placement in the tree, WriteAtomic and TempFile
// build on it. PosixFs() is the real one; tests pass a fault-injecting one
// (tests/support/fault_fs.h) to make the N-th call fail and check that the
// policy still keeps its promise.
//
// Contract for an implementation (what a fault-injecting FileSystem may do):
// - Any call may fail with any errno, including after partial effect only
//   where POSIX allows it (Write may write a prefix and report it: a short
//   write; the policy functions retry the rest).
// - A call may end the process (`_exit`) instead of returning: the policy
//   functions are written so that an exit at any call leaves either the old
//   state or the new one under every final name, never a partial file.
// - Calls never retry EINTR for the caller's benefit; PosixFs retries EINTR
//   itself and never returns it.
// Thread-safety: PosixFs() is stateless and may be used from any thread. The
// policy functions hold no state; they are as thread-safe as the FileSystem.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/fd.h"
#include "core/io.h"
#include "core/result.h"

namespace walferry {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // openat(2) with O_CLOEXEC added. On success stores the fd in *out.
  virtual int OpenAt(int dirfd, const char* name, int flags, mode_t mode, UniqueFd* out) = 0;
  // read(2)/write(2): bytes transferred (>= 0), or -errno. A short count is
  // not an error (the callers loop).
  virtual ssize_t Read(int fd, void* buf, std::size_t n) = 0;
  virtual ssize_t Write(int fd, const void* buf, std::size_t n) = 0;
  // One positional write (pwrite(2) semantics) of a prefix of `buf` at
  // `offset`, made by `io`, the caller's FileIo (core/io.h: io_uring or
  // pwrite; one per thread): the seam decides, the implementation writes.
  // Bytes written (a short count is not an error: WriteAllAt loops) or -errno.
  virtual ssize_t WriteAt(FileIo& io, int fd, std::span<const std::byte> buf, off_t offset) = 0;
  virtual int Fsync(int fd) = 0;
  virtual int Fdatasync(int fd) = 0;
  virtual int Ftruncate(int fd, off_t length) = 0;
  virtual int Fchmod(int fd, mode_t mode) = 0;
  // renameat2(2): `no_replace` is RENAME_NOREPLACE (EINVAL or ENOSYS where
  // the filesystem or kernel lacks it), otherwise renameat(2).
  virtual int Rename(int from_dir, const char* from, int to_dir, const char* to,
                     bool no_replace) = 0;
  virtual int Link(int from_dir, const char* from, int to_dir, const char* to) = 0;
  virtual int Unlink(int dirfd, const char* name) = 0;
  // mkdirat(2).
  virtual int Mkdir(int dirfd, const char* name, mode_t mode) = 0;
};

// The real filesystem (POSIX calls, EINTR retried). Never null; lives forever.
FileSystem& PosixFs();

// Opens `name` under `dirfd` (AT_FDCWD for paths). `shown` names it in errors.
Result<UniqueFd> OpenAt(FileSystem& fs, int dirfd, const std::string& name, int flags,
                        mode_t mode, std::string_view shown);

// Reads a whole small file under `dirfd`. `flags` are added to O_RDONLY
// (O_NOFOLLOW where a symlink must not be followed). `too_large` (kCorrupt
// by default) when it holds more than `limit` bytes ("SHOWN: file too large");
// kNotFound when absent.
Result<std::string> ReadSmallAt(FileSystem& fs, int dirfd, const std::string& name,
                                std::size_t limit, std::string_view shown, int flags = 0,
                                ErrorCode too_large = ErrorCode::kCorrupt);

// Writes all of `data` (retrying short writes).
Status WriteAll(FileSystem& fs, int fd, std::span<const std::byte> data, std::string_view shown);
// Writes all of `data` at `offset` through fs.WriteAt with `io` (retrying
// short writes; a write that makes no progress is EIO). The file offset of
// `fd` does not move.
Status WriteAllAt(FileSystem& fs, FileIo& io, int fd, std::span<const std::byte> data, off_t offset,
                  std::string_view shown);

// fsync of directory `dirfd` (after entries in it were created, renamed or removed).
Status FsyncDir(FileSystem& fs, int dirfd, std::string_view shown);

enum class Replace : unsigned char {
  kNo,   // fail with kExists when the target name exists (the archive contract)
  kYes,  // atomically replace whatever is there
};

// THE durable, atomic placement. Moves `from` (under `from_dir`) to `to`
// (under `to_dir`), modelled on PostgreSQL's durable_rename (fd.c):
//   1. fsync the file (`file_fd`, an open fd of `from`; pass -1 only when the
//      caller has just fsynced it through this same FileSystem);
//   2. rename; with Replace::kNo by renameat2(RENAME_NOREPLACE), and where the
//      filesystem lacks that flag (EINVAL/ENOSYS: older NFS, some FUSE) by
//      the one fallback: link(2), which never replaces either, then unlink of
//      `from` (a crash between the two leaves both names on the same inode:
//      the data is complete under the final name, the temp name is garbage);
//   3. fsync the directory that holds `to`.
// Crash guarantee: after an exit at any point, `to` names either its old
// content (or nothing) or the complete, fsynced new file; once this returns
// OK the new name survives a power loss. Errors: kExists when Replace::kNo and
// `to` exists (nothing changed); ErrnoError of the failing step otherwise. A
// failure in step 3 is reported although the rename happened (the caller
// retries and then meets kExists with identical content). `shown` is `to` as
// the user knows it, for messages.
Status RenameDurable(FileSystem& fs, int file_fd, int from_dir, const std::string& from,
                     int to_dir, const std::string& to, Replace replace, std::string_view shown);

// Step 2 of RenameDurable alone: the rename (same Replace rule and fallback),
// no fsync of the file or the directory. Only for a file whose reader makes it
// durable itself: restore_command's target, which PostgreSQL durable_renames
// into pg_wal (KeepFileRestoredFromArchive) and fetches again after a crash
// before that. Anywhere else a crash can leave the name empty or partial.
Status RenameUnsynced(FileSystem& fs, int from_dir, const std::string& from, int to_dir,
                      const std::string& to, Replace replace, std::string_view shown);

// A new file under a unique temporary name ".<stem>.<random>.wftmp" in
// `dirfd` (O_EXCL, so concurrent writers never share one), removed by the
// destructor unless Commit placed it. Not thread-safe; move-only.
class TempFile {
 public:
  // `stem` is cut to 200 bytes so the temp name stays within NAME_MAX.
  static Result<TempFile> Create(FileSystem& fs, int dirfd, std::string_view stem, mode_t mode,
                                 std::string_view shown_dir);
  TempFile(TempFile&& o) noexcept;
  TempFile& operator=(TempFile&&) = delete;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();

  int fd() const { return fd_.get(); }
  const std::string& name() const { return name_; }  // relative to the dirfd
  const std::string& shown() const { return shown_; }  // for messages
  Status Write(std::span<const std::byte> data) { return WriteAll(*fs_, fd_.get(), data, shown_); }
  // RenameDurable of this file to `to` under `to_dir`. On success the temp
  // name is gone; on failure it is removed by the destructor.
  // durable=false: RenameUnsynced instead (see there for the only use).
  Status Commit(int to_dir, const std::string& to, Replace replace, std::string_view shown,
                bool durable = true);

 private:
  TempFile(FileSystem& fs, int dirfd, UniqueFd fd, std::string name, std::string shown)
      : fs_(&fs), dirfd_(dirfd), fd_(std::move(fd)), name_(std::move(name)), shown_(std::move(shown)) {}
  FileSystem* fs_;
  int dirfd_;
  UniqueFd fd_;
  std::string name_, shown_;
  bool placed_ = false;
};

// Writes `content` as `name` under `dirfd`: a TempFile with exactly `mode`
// (fchmod, whatever the umask), fully written, then RenameDurable. Errors as
// RenameDurable's (kExists with Replace::kNo); the temp file never survives
// a failure.
Status WriteAtomic(FileSystem& fs, int dirfd, const std::string& name, std::string_view content,
                   mode_t mode, Replace replace, std::string_view shown);

}  // namespace walferry
