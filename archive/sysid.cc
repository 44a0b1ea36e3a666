// ROOT/<cluster>/system_identifier: the WAL system id a cluster first saw.
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

// Reads ROOT/<cluster>/system_identifier; nullopt when absent.
Result<std::optional<std::uint64_t>> ReadSysid(FileSystem& fs, int cluster_fd,
                                               const std::string& shown) {
  auto text = ReadSmallAt(fs, cluster_fd, kSysidFile, 256, shown, O_NOFOLLOW);
  if (!text.ok()) {
    if (text.error().code() == ErrorCode::kNotFound) return std::optional<std::uint64_t>();
    return text.error();
  }
  std::string_view v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  std::uint64_t id = 0;
  if (!ParseNumber(v, &id)) {
    return Error(ErrorCode::kCorrupt, shown + " is unreadable; fix or remove it by hand");
  }
  return std::optional<std::uint64_t>(id);
}

Error SysidMismatch(std::uint64_t got, std::uint64_t have) {
  return Error(ErrorCode::kRefused, "WAL from a different cluster (system identifier " +
                                        std::to_string(got) + ", archive has " +
                                        std::to_string(have) + ")");
}

}  // namespace walferry::archive::internal
