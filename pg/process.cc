#include "pg/process.h"

#include <fcntl.h>
#include <sys/types.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>

#include "core/path.h"

extern char** environ;

namespace walferry::pg {
namespace {

std::vector<char*> Argv(const std::vector<std::string>& argv) {
  std::vector<char*> v;
  for (const auto& a : argv) v.push_back(const_cast<char*>(a.c_str()));
  v.push_back(nullptr);
  return v;
}

bool IsExecutable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

std::string SearchPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t pos = 0;
  while (pos <= p.size()) {
    std::size_t c = p.find(':', pos);
    std::string dir = p.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + name;
    if (IsExecutable(cand)) return cand;
    if (c == std::string::npos) break;
    pos = c + 1;
  }
  return "";
}

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

Result<int> WaitPid(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError(errno, "waitpid");
  }
  return DecodeStatus(status);
}

Status CheckProgram(const std::string& prog) {
  if (prog.find('/') != std::string::npos ? IsExecutable(prog) : !SearchPath(prog).empty()) {
    return Status::Ok();
  }
  return Error(ErrorCode::kNotFound, "program not found: " + prog);
}

// Spawn attributes: children start with SIGPIPE at its default, whatever
// the caller ignores (the binary ignores it to get EPIPE on dead pipes).
struct SpawnAttr {
  SpawnAttr() {
    posix_spawnattr_init(&attr);
    sigset_t def;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &def);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr); }
  SpawnAttr(const SpawnAttr&) = delete;
  SpawnAttr& operator=(const SpawnAttr&) = delete;
  posix_spawnattr_t attr;
};

// posix_spawnp of argv with the file actions `fa` (destroyed here) and
// SpawnAttr; the child's pid.
Result<pid_t> SpawnWith(const std::vector<std::string>& argv, posix_spawn_file_actions_t* fa) {
  pid_t pid;
  auto args = Argv(argv);
  SpawnAttr attr;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), fa, &attr.attr, args.data(), environ);
  posix_spawn_file_actions_destroy(fa);
  if (rc != 0) return ErrnoError(rc, "run " + argv[0]);
  return pid;
}

}  // namespace

Result<RunResult> Run(const std::vector<std::string>& argv) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "empty command");
  WF_TRY(CheckProgram(argv[0]));
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);
  WF_ASSIGN(pid_t pid, SpawnWith(argv, &fa));
  out_w.Reset();
  err_w.Reset();
  RunResult r;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* bufs[2] = {&r.out, &r.err};
  int open_count = 2;
  char buf[8192];
  while (open_count > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        bufs[i]->append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_count;
      }
    }
  }
  WF_ASSIGN(r.exit_code, WaitPid(pid));
  return r;
}

Result<Child> Child::Spawn(const std::vector<std::string>& argv, PipeEnd end) {
  if (argv.empty()) return Error(ErrorCode::kInvalidArgument, "empty command");
  WF_TRY(CheckProgram(argv[0]));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe");
  UniqueFd r(p[0]), w(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (end == PipeEnd::kFromChild) {
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, w.get(), 1);
  } else {
    posix_spawn_file_actions_adddup2(&fa, r.get(), 0);
  }
  WF_ASSIGN(pid_t pid, SpawnWith(argv, &fa));
  return Child(pid, end == PipeEnd::kFromChild ? std::move(r) : std::move(w));
}

Child::Child(Child&& o) noexcept : pid_(o.pid_), fd_(std::move(o.fd_)) { o.pid_ = -1; }

Child& Child::operator=(Child&& o) noexcept {
  if (this != &o) {
    Reap();
    pid_ = o.pid_;
    fd_ = std::move(o.fd_);
    o.pid_ = -1;
  }
  return *this;
}

Child::~Child() { Reap(); }

void Child::Reap() {
  // Kill and reap first, close the pipe last: a child reading our end must
  // never see a clean EOF (a sender would take it for the end of its input and
  // commit what it has) before it is dead.
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  fd_.Reset();
}

Result<int> Child::Wait() {
  fd_.Reset();
  if (pid_ <= 0) return Error(ErrorCode::kInternal, "no child to wait for");
  auto r = WaitPid(pid_);
  pid_ = -1;
  return r;
}

Status Relay(int in, int out) {
  Status result = Status::Ok();
  bool use_splice = true;
  std::vector<char> buf;
  for (;;) {
    if (use_splice) {
      ssize_t n = ::splice(in, nullptr, out, nullptr, 1 << 20, SPLICE_F_MOVE);
      if (n > 0) continue;
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EINVAL || errno == ENOSYS) {
        use_splice = false;
        continue;
      }
      result = ErrnoError(errno, "relay");
      break;
    }
    if (buf.empty()) buf.resize(1 << 20);
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = ErrnoError(errno, "read");
      break;
    }
    if (n == 0) break;
    Status w = WriteFull(out, std::as_bytes(std::span(buf.data(), static_cast<std::size_t>(n))), "pipe");
    if (!w.ok()) {
      result = w;
      break;
    }
  }
  return result;
}

std::string FindPgProgram(const std::string& name, int major, const std::string& pgbin) {
  if (!pgbin.empty()) return pgbin + "/" + name;
  if (major > 0) {
    std::string p = "/usr/lib/postgresql/" + std::to_string(major) + "/bin/" + name;
    if (IsExecutable(p)) return p;
  }
  if (std::string p = SearchPath(name); !p.empty()) return p;
  int best = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    std::string v = e.path().filename().string();
    int m = std::atoi(v.c_str());
    if (m > best && IsExecutable(e.path().string() + "/bin/" + name)) best = m;
  }
  if (best > 0) return "/usr/lib/postgresql/" + std::to_string(best) + "/bin/" + name;
  return name;
}

std::string SelfCommand() {
  auto exe = SelfExePath();
  if (!exe.ok()) return "walferry";
  const std::string& self = *exe;
  std::string on_path = SearchPath("walferry");
  if (!on_path.empty()) {
    std::error_code ec;
    if (std::filesystem::equivalent(on_path, self, ec)) return "walferry";
  }
  return self;
}

}  // namespace walferry::pg
