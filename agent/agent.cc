// How the agent works:
// - One mutex guards the table of files it knows (entries_), the priority
//   queue and the figures; one condition variable wakes workers (new work)
//   and waiting requests (a transfer finished).
// - Threads: Run() accepts clients (poll on the socket and an eventfd that
//   Stop() writes); one thread per client connection; one scanner (inotify +
//   periodic rescan of archive_status); `parallel` workers, each owning one
//   transport::Sender (a persistent connection carrying many transfers).
// - A worker takes a requested file first, else the first queued .ready file
//   in PostgreSQL's order. A file is recorded as durable with the size and
//   XXH3-128 the Sender computed over the bytes it sent and the receiver
//   checked; a request is answered from that record only when the file at the
//   requested path hashes to the same value now.
#include "agent/agent.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "agent/protocol.h"
#include "core/fd.h"
#include "core/hash.h"

namespace walferry::agent {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

bool IsHistory(const std::string& n) { return n.size() > 8 && n.compare(n.size() - 8, 8, ".history") == 0; }

// PostgreSQL's archiver order (pgarch.c, ready_file_comparator): timeline
// history files first, then by name.
bool ArchiveOrder(const std::string& a, const std::string& b) {
  bool ha = IsHistory(a), hb = IsHistory(b);
  if (ha != hb) return ha;
  return a < b;
}
struct OrderCmp {
  bool operator()(const std::string& a, const std::string& b) const { return ArchiveOrder(a, b); }
};

struct FileId {
  std::uint64_t size = 0;
  Hash128 hash;
};

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

Status EnsurePrivateDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError(errno, "agent socket directory " + dir);
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoError(errno, dir);
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
    return Error(ErrorCode::kAuth, "agent socket directory " + dir +
                                       " must be a directory owned by this user with mode 0700 (chmod 700 " + dir +
                                       ")");
  }
  return Status::Ok();
}

std::string DirOf(const std::string& p) {
  auto s = p.rfind('/');
  if (s == std::string::npos) return ".";
  return s == 0 ? std::string("/") : p.substr(0, s);
}

class AgentImpl final : public Agent {
 public:
  explicit AgentImpl(AgentOptions o) : o_(std::move(o)) {
    status_dir_ = o_.pgdata + "/pg_wal/archive_status";
    wal_dir_ = o_.pgdata + "/pg_wal";
    o_.send.kind = transport::WireKind::kWal;
    stats_.started_epoch = Now();
  }

  ~AgentImpl() override {
    Stop();
    JoinAll();
  }

  Status Init() {
    if (o_.parallel < 1) return Error(ErrorCode::kInvalidArgument, "agent: --parallel must be >= 1");
    if (o_.ahead < 1) return Error(ErrorCode::kInvalidArgument, "agent: --ahead must be >= 1");
    if (!o_.send.connect) return Error(ErrorCode::kInvalidArgument, "agent: no receiver");
    struct stat st{};
    if (::stat(status_dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error(ErrorCode::kInvalidArgument,
                   "agent: " + status_dir_ + " is not a directory (is --pgdata a PostgreSQL data directory?)");
    }
    WF_TRY(EnsurePrivateDir(DirOf(o_.socket_path)));
    sockaddr_un addr{};
    if (o_.socket_path.size() >= sizeof addr.sun_path || o_.socket_path.empty()) {
      return Error(ErrorCode::kInvalidArgument, "agent socket path too long: " + o_.socket_path);
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, o_.socket_path.data(), o_.socket_path.size());
    listen_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_.valid()) return ErrnoError(errno, "agent socket");
    // A socket file left by a dead agent: replace it, but never steal a live one.
    if (::lstat(o_.socket_path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return Error(ErrorCode::kExists, o_.socket_path + " exists and is not a socket");
      UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        return Error(ErrorCode::kExists, "another agent is already listening on " + o_.socket_path);
      }
      ::unlink(o_.socket_path.c_str());
    }
    mode_t old = ::umask(0177);
    int r = ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int e = errno;
    ::umask(old);
    if (r != 0) return ErrnoError(e, "bind " + o_.socket_path);
    if (::chmod(o_.socket_path.c_str(), 0600) != 0) return ErrnoError(errno, "chmod " + o_.socket_path);
    if (::listen(listen_.get(), 64) != 0) return ErrnoError(errno, "listen " + o_.socket_path);
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

  Status Run() override {
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

  void Stop() override {
    if (stop_.exchange(true)) return;
    std::uint64_t one = 1;
    if (wake_.valid()) (void)!::write(wake_.get(), &one, sizeof one);
    std::lock_guard lk(mu_);
    for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
    cv_.notify_all();
  }

  AgentStats Stats() const override {
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

 private:
  enum class State { kQueued, kInFlight, kDurable, kFailed };
  struct Entry {
    State state = State::kQueued;
    bool requested = false;    // a client waits: ship before read-ahead
    std::string path;          // what to ship (the requested path, else pg_wal/NAME)
    FileId shipped;            // kDurable: what the receiver holds
    transport::WireOutcome outcome = transport::WireOutcome::kPlaced;
    std::string error;         // kFailed
    ErrorCode error_code = ErrorCode::kOk;
    Clock::time_point failed_at{};
    std::uint64_t done = 0;    // transfers finished (waiters watch it)
    int waiters = 0;
  };

  void Log(const std::string& m, bool warning = false) {
    if (o_.log) o_.log(warning, m);
  }

  void JoinAll() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
    std::unique_lock lk(mu_);
    cv_.wait(lk, [this] { return clients_ == 0; });
  }

  // ---- read-ahead: scanning archive_status ----
  void Scanner() {
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

  void Scan() {
    std::set<std::string, OrderCmp> ready;
    std::uint64_t bytes = 0;
    std::int64_t oldest = 0;
    DIR* d = ::opendir(status_dir_.c_str());
    if (!d) {
      Log("agent: cannot read " + status_dir_ + ": " + std::strerror(errno), true);
      return;
    }
    while (dirent* de = ::readdir(d)) {
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
    ::closedir(d);
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

  // ---- workers ----
  // The next file to ship, marked in flight; "" when stopping.
  std::string Take(std::unique_lock<std::mutex>& lk) {
    for (;;) {
      if (stop_.load()) return "";
      while (!priority_.empty()) {
        std::string n = priority_.front();
        priority_.pop_front();
        auto it = entries_.find(n);
        if (it != entries_.end() && it->second.state == State::kQueued) {
          it->second.state = State::kInFlight;
          return n;
        }
      }
      auto now = Clock::now();
      std::string best;
      Clock::time_point next_retry = Clock::time_point::max();
      for (auto& [n, e] : entries_) {
        bool eligible = e.state == State::kQueued ||
                        (e.state == State::kFailed && !e.requested && now - e.failed_at >= o_.retry);
        if (e.state == State::kFailed && !e.requested) next_retry = std::min(next_retry, e.failed_at + o_.retry);
        if (eligible && (best.empty() || ArchiveOrder(n, best))) best = n;
      }
      if (!best.empty()) {
        entries_[best].state = State::kInFlight;
        return best;
      }
      if (next_retry == Clock::time_point::max()) {
        cv_.wait(lk);
      } else {
        cv_.wait_until(lk, next_retry);
      }
    }
  }

  void Worker() {
    transport::SendOptions so = o_.send;
    transport::Sender sender(std::move(so));
    std::unique_lock lk(mu_);
    for (;;) {
      std::string name = Take(lk);
      if (name.empty()) return;
      std::string path = entries_[name].path;
      bool requested = entries_[name].requested;
      lk.unlock();
      Result<transport::SendResult> r = Error(ErrorCode::kInternal, "not sent");
      struct stat st{};
      bool gone = !requested && ::stat((status_dir_ + "/" + name + ".ready").c_str(), &st) != 0;
      const auto t0 = Clock::now();
      if (!gone) r = sender.SendFile(path, name);
      if (!gone && r.ok()) {
        const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
        Log("agent: name=" + name + (r->outcome == transport::WireOutcome::kIdentical ? " identical" : " placed") +
            " bytes=" + std::to_string(r->raw_bytes) + " wire=" + std::to_string(r->wire_bytes) +
            " ms=" + std::to_string(ms) +
            (requested ? " requested" : " ahead"));
      }
      lk.lock();
      Entry& e = entries_[name];
      ++e.done;
      if (gone) {
        e.state = State::kQueued;  // the next scan forgets it
        e.state = State::kFailed;
        e.failed_at = Clock::now();
        e.error = "no longer ready";
        e.error_code = ErrorCode::kNotFound;
      } else if (r.ok()) {
        e.state = State::kDurable;
        e.shipped = FileId{r->raw_bytes, r->hash};
        e.outcome = r->outcome;
        e.requested = false;
        ++stats_.shipped_files;
        stats_.shipped_bytes += r->raw_bytes;
        stats_.last_success_epoch = Now();
      } else {
        e.state = State::kFailed;
        e.failed_at = Clock::now();
        e.error = r.error().message();
        e.error_code = r.error().code();
        e.requested = false;
        bool vanished = r.error().code() == ErrorCode::kNotFound;
        if (!vanished) {
          ++stats_.failures;
          stats_.last_failure_epoch = Now();
          stats_.last_error = name + ": " + e.error;
          std::string msg = "agent: " + name + ": " + e.error;
          lk.unlock();
          Log(msg, true);
          lk.lock();
        }
      }
      cv_.notify_all();
    }
  }

  // ---- clients ----
  void Client(UniqueFd fd) {
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

  bool ReadRequest(int fd, std::string& line) {
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

  std::string Push(const internal::PushRequest& req) {
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

  std::string StatusText() {
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

  AgentOptions o_;
  std::string status_dir_, wal_dir_;
  UniqueFd listen_, wake_, inotify_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Entry, OrderCmp> entries_;  // guarded by mu_
  std::deque<std::string> priority_;                // guarded by mu_
  AgentStats stats_;                                // guarded by mu_
  std::set<int> client_fds_;                        // guarded by mu_
  int clients_ = 0;                                 // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace

Result<std::unique_ptr<Agent>> Agent::Start(AgentOptions options) {
  auto a = std::make_unique<AgentImpl>(std::move(options));
  WF_TRY(a->Init());
  return std::unique_ptr<Agent>(std::move(a));
}

}  // namespace walferry::agent
