// Directories and stored files reached from a directory fd, never through a
// symlink inside ROOT.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/bytes.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/io.h"
#include "core/path.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"

#include "archive/disk_internal.h"

namespace walferry::archive::internal {

Result<UniqueFd> OpenDirAt(int dirfd, const std::string& name, const std::string& shown,
                           bool create, FileSystem& fs) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    int err = errno;
    if (err == EINTR) continue;
    if (err == ELOOP || err == ENOTDIR) {
      return Error(ErrorCode::kRefused,
                   shown + " is a symlink or not a directory; the receiver never follows symlinks "
                           "inside its root (replace it with a real directory)");
    }
    if (err != ENOENT || !create) return ErrnoError(err, "open " + shown);
    if (int e = fs.Mkdir(dirfd, name.c_str(), 0700); e != 0 && e != EEXIST) {
      return ErrnoError(e, "mkdir " + shown);
    }
    WF_TRY(FsyncDir(fs, dirfd, shown));
  }
  return Error(ErrorCode::kIo, "cannot open directory " + shown);
}

// Looks for `name` in any store format under `dirfd`; regular files only.
std::optional<StoreFormat> FindStored(int dirfd, const std::string& name) {
  for (StoreFormat f : {StoreFormat::kZstd, StoreFormat::kGzip, StoreFormat::kRaw}) {
    std::string file = name + std::string(StoreSuffix(f));
    struct stat st{};
    if (::fstatat(dirfd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      return f;
    }
  }
  return std::nullopt;
}

}  // namespace walferry::archive::internal
