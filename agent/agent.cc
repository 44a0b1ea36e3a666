// The agent's life: start (options, socket, inotify), the accept loop, stop.
// How it works as a whole: agent/agent_internal.h.
#include "agent/agent.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>

#include "agent/agent_internal.h"

namespace walferry::agent {
namespace internal {

std::int64_t NowEpoch() { return static_cast<std::int64_t>(std::time(nullptr)); }

AgentImpl::AgentImpl(AgentOptions o) : o_(std::move(o)) {
  status_dir_ = o_.pgdata + "/pg_wal/archive_status";
  wal_dir_ = o_.pgdata + "/pg_wal";
  o_.send.kind = transport::WireKind::kWal;
  stats_.started_epoch = NowEpoch();
}

AgentImpl::~AgentImpl() {
  Stop();
  JoinAll();
}

Status AgentImpl::Init() {
  if (o_.parallel < 1) return Error(ErrorCode::kInvalidArgument, "agent: --parallel must be >= 1");
  if (o_.ahead < 1) return Error(ErrorCode::kInvalidArgument, "agent: --ahead must be >= 1");
  if (!o_.send.connect) return Error(ErrorCode::kInvalidArgument, "agent: no receiver");
  struct stat st{};
  if (::stat(status_dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Error(ErrorCode::kInvalidArgument,
                 "agent: " + status_dir_ + " is not a directory (is --pgdata a PostgreSQL data directory?)");
  }
  WF_ASSIGN(listen_, ListenPrivate(o_.socket_path));
  wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) return ErrnoError(errno, "eventfd");
  inotify_.Reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  if (inotify_.valid()) {
    if (::inotify_add_watch(inotify_.get(), status_dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
      Log("agent: inotify on " + status_dir_ + " unavailable (" + std::strerror(errno) + "); rescanning only", true);
      inotify_.Reset();
    }
  }
  return Status::Ok();
}

Status AgentImpl::Run() {
  Scan();
  for (int i = 0; i < o_.parallel; ++i) threads_.emplace_back([this] { Worker(); });
  threads_.emplace_back([this] { Scanner(); });
  Log("agent: watching " + status_dir_ + ", listening on " + o_.socket_path + ", " +
      std::to_string(o_.parallel) + " transfers at once");
  while (!stop_.load()) {
    pollfd p[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int r = ::poll(p, 2, 1000);
    if (r < 0 && errno != EINTR) return ErrnoError(errno, "agent: poll");
    if (stop_.load()) break;
    if (r <= 0 || !(p[0].revents & POLLIN)) continue;
    UniqueFd c(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.valid()) continue;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != ::geteuid()) {
      Log("agent: refused a client running as uid " + std::to_string(cred.uid), true);
      continue;
    }
    std::lock_guard lk(mu_);
    ++clients_;
    client_fds_.insert(c.get());
    std::thread([this, fd = std::move(c)]() mutable { Client(std::move(fd)); }).detach();
  }
  Stop();
  JoinAll();
  ::unlink(o_.socket_path.c_str());
  return Status::Ok();
}

void AgentImpl::Stop() {
  if (stop_.exchange(true)) return;
  std::uint64_t one = 1;
  if (wake_.valid()) (void)!::write(wake_.get(), &one, sizeof one);
  std::lock_guard lk(mu_);
  for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
  cv_.notify_all();
}

AgentStats AgentImpl::Stats() const {
  std::lock_guard lk(mu_);
  AgentStats s = stats_;
  s.in_flight = 0;
  s.queued = 0;
  for (auto& [n, e] : entries_) {
    if (e.state == State::kInFlight) ++s.in_flight;
    if (e.state == State::kQueued) ++s.queued;
  }
  return s;
}

void AgentImpl::JoinAll() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  std::unique_lock lk(mu_);
  cv_.wait(lk, [this] { return clients_ == 0; });
}

}  // namespace internal

Result<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  auto a = std::make_unique<internal::AgentImpl>(std::move(options));
  WF_TRY(a->Init());
  return std::unique_ptr<Agent>(std::move(a));
}

}  // namespace walferry::agent
