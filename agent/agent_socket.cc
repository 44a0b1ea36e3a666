// The agent's unix socket: a private directory, mode 0600, never stealing a
// live agent's socket.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "agent/agent_internal.h"

namespace walferry::agent::internal {
namespace {

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

}  // namespace

Result<UniqueFd> ListenPrivate(const std::string& path) {
  WF_TRY(EnsurePrivateDir(DirOf(path)));
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path || path.empty()) {
    return Error(ErrorCode::kInvalidArgument, "agent socket path too long: " + path);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd listen(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listen.valid()) return ErrnoError(errno, "agent socket");
  // A socket file left by a dead agent: replace it, but never steal a live one.
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error(ErrorCode::kExists, path + " exists and is not a socket");
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      return Error(ErrorCode::kExists, "another agent is already listening on " + path);
    }
    ::unlink(path.c_str());
  }
  mode_t old = ::umask(0177);
  int r = ::bind(listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  int e = errno;
  ::umask(old);
  if (r != 0) return ErrnoError(e, "bind " + path);
  if (::chmod(path.c_str(), 0600) != 0) return ErrnoError(errno, "chmod " + path);
  if (::listen(listen.get(), 64) != 0) return ErrnoError(errno, "listen " + path);
  return listen;
}

}  // namespace walferry::agent::internal
