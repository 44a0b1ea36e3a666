// The agent's clients (walferry push, the archive module, status): one
// request line each, PING, STATUS or PUSH NAME PATH.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent_internal.h"

namespace walferry::agent::internal {

using std::chrono::milliseconds;

// Size and XXH3-128 of the file at `path` as it is now.
Result<FileId> HashFile(const std::string& path) {
  WF_ASSIGN(UniqueFd fd, OpenFile(path, O_RDONLY));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, path);
  if (!S_ISREG(st.st_mode)) return Error(ErrorCode::kInvalidArgument, path + ": not a regular file");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  Xxh3Stream h;
  std::vector<std::byte> buf(1 << 20);
  FileId id;
  for (;;) {
    WF_ASSIGN(std::size_t n, ReadFull(fd.get(), buf, path));
    if (n == 0) break;
    h.Update(std::span(buf).first(n));
    id.size += n;
    if (n < buf.size()) break;
  }
  id.hash = h.Digest();
  return id;
}

void AgentImpl::Client(UniqueFd fd) {
  std::string line;
  bool ok = ReadRequest(fd.get(), line);
  if (ok) {
    std::string answer;
    if (line == "PING") {
      answer = "PONG " + std::to_string(::getpid()) + "\n";
    } else if (line == "STATUS") {
      answer = StatusText();
    } else {
      auto req = internal::ParsePushRequest(line);
      answer = req.ok() ? Push(*req) : internal::FormatError(req.error());
    }
    std::size_t off = 0;
    while (off < answer.size()) {
      ssize_t n = ::send(fd.get(), answer.data() + off, answer.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      off += static_cast<std::size_t>(n);
    }
  }
  std::lock_guard lk(mu_);
  client_fds_.erase(fd.get());
  fd.Reset();
  --clients_;
  cv_.notify_all();
}

bool AgentImpl::ReadRequest(int fd, std::string& line) {
  auto deadline = Clock::now() + milliseconds(10000);
  while (line.size() <= kMaxLine) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || stop_.load()) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char buf[1024];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    line.append(buf, static_cast<std::size_t>(n));
    auto nl = line.find('\n');
    if (nl != std::string::npos) {
      line.resize(nl);
      return true;
    }
  }
  return false;
}

std::string AgentImpl::Push(const PushRequest& req) {
  // Hash what the client asks about, as it is now (PostgreSQL may have
  // recycled or rewritten a file of that name since it was shipped ahead).
  auto id = HashFile(req.path);
  if (!id.ok()) return internal::FormatError(id.error());
  std::unique_lock lk(mu_);
  ++stats_.requests;
  bool shipped_now = false;
  for (;;) {
    if (stop_.load()) return internal::FormatError(Error(ErrorCode::kNetwork, "the agent is stopping"));
    Entry& e = entries_[req.name];
    if (e.path.empty()) e.path = req.path;
    if (e.state == State::kDurable && e.shipped.size == id->size && e.shipped.hash == id->hash) {
      if (!shipped_now) ++stats_.requests_hit;
      return std::string("OK ") +
             (!shipped_now ? "durable"
                           : e.outcome == transport::WireOutcome::kIdentical ? "identical" : "placed") +
             "\n";
    }
    if (e.state == State::kFailed && shipped_now) {
      return internal::FormatError(Error(e.error_code, e.error));
    }
    if (e.state == State::kDurable && shipped_now) {
      return internal::FormatError(Error(ErrorCode::kIo, req.path + " changed while it was being archived"));
    }
    std::uint64_t done = e.done;
    if (e.state != State::kInFlight) {
      // Ship exactly the requested file, before any read-ahead.
      e.path = req.path;
      e.state = State::kQueued;
      e.requested = true;
      priority_.push_back(req.name);
      shipped_now = true;
      cv_.notify_all();
    }
    ++e.waiters;
    cv_.wait(lk, [&] {
      auto it = entries_.find(req.name);
      return stop_.load() || it == entries_.end() || it->second.done != done;
    });
    auto it = entries_.find(req.name);
    if (it != entries_.end()) --it->second.waiters;
    // An in-flight read-ahead transfer finished: loop to check its record
    // (if it was not what we hold, we ship ours next round).
    if (it != entries_.end() && it->second.state != State::kDurable && !shipped_now) continue;
  }
}

std::string AgentImpl::StatusText() {
  AgentStats s = Stats();
  std::string out;
  auto kv = [&](const char* k, const std::string& v) { out += std::string(k) + " " + v + "\n"; };
  auto num = [&](const char* k, long long v) { kv(k, std::to_string(v)); };
  num("pid", ::getpid());
  num("started_epoch", s.started_epoch);
  kv("pgdata", o_.pgdata);
  num("parallel", o_.parallel);
  num("shipped_files", static_cast<long long>(s.shipped_files));
  num("shipped_bytes", static_cast<long long>(s.shipped_bytes));
  num("requests", static_cast<long long>(s.requests));
  num("requests_hit", static_cast<long long>(s.requests_hit));
  num("failures", static_cast<long long>(s.failures));
  num("ready_files", static_cast<long long>(s.ready_files));
  num("ready_bytes", static_cast<long long>(s.ready_bytes));
  num("oldest_ready_epoch", s.oldest_ready_epoch);
  num("last_success_epoch", s.last_success_epoch);
  num("last_failure_epoch", s.last_failure_epoch);
  std::string err = s.last_error;
  for (char& c : err) {
    if (c == '\n') c = ' ';
  }
  kv("last_error", err.empty() ? "-" : err);
  num("in_flight", s.in_flight);
  num("queued", s.queued);
  return out + "END\n";
}

}  // namespace walferry::agent::internal
