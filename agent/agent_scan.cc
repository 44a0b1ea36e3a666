// Read-ahead: the .ready files of archive_status, in PostgreSQL's order,
// found by inotify and a periodic rescan.
#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "agent/agent_internal.h"

namespace walferry::agent::internal {

namespace {

bool IsHistory(const std::string& n) { return n.size() > 8 && n.ends_with(".history"); }

}  // namespace

// PostgreSQL's archiver order (pgarch.c, ready_file_comparator): timeline
// history files first, then by name.
bool ArchiveOrder(const std::string& a, const std::string& b) {
  bool ha = IsHistory(a), hb = IsHistory(b);
  if (ha != hb) return ha;
  return a < b;
}

void AgentImpl::Scanner() {
  while (!stop_.load()) {
    pollfd p[2] = {{wake_.get(), POLLIN, 0}, {inotify_.valid() ? inotify_.get() : -1, POLLIN, 0}};
    int r = ::poll(p, 2, static_cast<int>(o_.rescan.count()));
    if (stop_.load()) break;
    if (r > 0 && (p[1].revents & POLLIN)) {
      char buf[16 * 1024];
      while (::read(inotify_.get(), buf, sizeof buf) > 0) {
      }
    }
    Scan();
  }
}

void AgentImpl::Scan() {
  std::set<std::string, OrderCmp> ready;
  std::uint64_t bytes = 0;
  std::int64_t oldest = 0;
  UniqueDir d(::opendir(status_dir_.c_str()));
  if (!d) {
    Log("agent: cannot read " + status_dir_ + ": " + std::strerror(errno), true);
    return;
  }
  while (dirent* de = ::readdir(d.get())) {
    std::string n = de->d_name;
    if (n.size() <= 6 || n.compare(n.size() - 6, 6, ".ready") != 0) continue;
    std::string name = n.substr(0, n.size() - 6);
    if (name.find('/') != std::string::npos || name[0] == '.') continue;
    struct stat st{};
    if (::stat((status_dir_ + "/" + n).c_str(), &st) == 0 && (oldest == 0 || st.st_mtime < oldest)) {
      oldest = st.st_mtime;
    }
    if (::stat((wal_dir_ + "/" + name).c_str(), &st) == 0) bytes += static_cast<std::uint64_t>(st.st_size);
    ready.insert(std::move(name));
  }
  d.reset();
  std::lock_guard lk(mu_);
  stats_.ready_files = ready.size();
  stats_.ready_bytes = bytes;
  stats_.oldest_ready_epoch = oldest;
  // Forget what PostgreSQL has marked done (no .ready any more) unless a client waits.
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    if (!ready.count(it->first) && e.waiters == 0 && !e.requested && e.state != State::kInFlight) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  int pending = 0;
  for (auto& [n, e] : entries_) {
    if (e.state != State::kDurable) ++pending;
  }
  for (const std::string& name : ready) {
    if (pending >= o_.ahead) break;
    auto [it, fresh] = entries_.try_emplace(name);
    if (!fresh) continue;
    it->second.path = wal_dir_ + "/" + name;
    ++pending;
  }
  cv_.notify_all();
}

}  // namespace walferry::agent::internal
