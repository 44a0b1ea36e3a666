#include "pg/prefetch_window.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "core/fd.h"
#include "walfmt/wal_names.h"

namespace walferry::pg {

bool PrefetchWorkerNeeded(const std::string& dir, const std::string& name, std::uint32_t segment_size, int count) {
  auto seg = walfmt::ParseSegmentName(name);
  if (!seg || count < 1) return true;
  auto per_id = walfmt::SegmentsPerLogId(segment_size > 0 ? segment_size : (16u << 20));
  if (!per_id.ok()) return true;
  const int low_water = (count + 1) / 2;
  bool missing = false;
  for (const std::string& next : walfmt::NextSegmentNames(*seg, *per_id, low_water)) {
    if (::access((dir + "/" + next).c_str(), F_OK) != 0) {
      missing = true;
      break;
    }
  }
  if (!missing) return false;
  // A worker holding the lock is filling the window now.
  UniqueFd lock(::open((dir + "/.lock").c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!lock.valid()) return true;
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return errno != EWOULDBLOCK;
  ::flock(lock.get(), LOCK_UN);
  return true;
}

}  // namespace walferry::pg
