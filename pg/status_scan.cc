// The figures read from directories: PGDATA/pg_wal/archive_status (backlog
// and rates) and ROOT/CLUSTER of a disk archive (size, last write).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "core/fd.h"
#include "pg/status.h"

namespace walferry::pg {
namespace {

double StatTime(const struct timespec& t) {
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

}  // namespace

Result<std::int64_t> CountReady(const std::string& pgdata) {
  std::string dir = pgdata + "/pg_wal/archive_status";
  UniqueDir d(::opendir(dir.c_str()));
  if (!d) return ErrnoError(errno, "open " + dir);
  std::int64_t n = 0;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view name = e->d_name;
    if (name.size() > 6 && name.ends_with(".ready")) ++n;
  }
  return n;
}

Result<ArchiveStatusScan> ScanArchiveStatus(const std::string& pgdata, double now, int window_s) {
  const std::string dir = pgdata + "/pg_wal/archive_status";
  UniqueDir d(::opendir(dir.c_str()));
  if (!d) return ErrnoError(errno, "open " + dir);
  ArchiveStatusScan scan;
  const double since = now - window_s;
  while (dirent* e = ::readdir(d.get())) {
    std::string name = e->d_name;
    const bool ready = name.size() > 6 && name.ends_with(".ready");
    const bool done = name.size() > 5 && name.ends_with(".done");
    if (!ready && !done) continue;
    struct stat st{};
    if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;  // archived or removed meanwhile
    const double created = StatTime(st.st_mtim);
    const std::string wal = name.substr(0, name.rfind('.'));
    const bool segment = wal.size() == 24;  // not .history / .backup files
    if (segment && created >= since) ++scan.written_in_window;
    if (ready) {
      ++scan.ready_count;
      struct stat ws{};
      if (::stat((pgdata + "/pg_wal/" + wal).c_str(), &ws) == 0) scan.ready_bytes += ws.st_size;
      const double age = now - created;
      if (age > scan.oldest_ready_age_s) scan.oldest_ready_age_s = age < 0 ? 0 : age;
    } else if (segment && StatTime(st.st_ctim) >= since) {
      ++scan.archived_in_window;
    }
  }
  return scan;
}

ArchiveUsage ClusterUsage(const std::string& root, const std::string& cluster, double now) {
  ArchiveUsage u;
  double newest = -1;
  for (const char* sub : {"wal", "files"}) {
    const std::string dir = root + "/" + cluster + "/" + sub;
    UniqueDir d(::opendir(dir.c_str()));
    if (!d) continue;
    while (dirent* e = ::readdir(d.get())) {
      if (e->d_name[0] == '.') continue;
      struct stat st{};
      if (::lstat((dir + "/" + e->d_name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      u.bytes += static_cast<std::uint64_t>(st.st_blocks) * 512;
      newest = std::max(newest, StatTime(st.st_mtim));
    }
  }
  if (newest >= 0) u.last_write_age_s = std::max(0.0, now - newest);
  return u;
}

}  // namespace walferry::pg
