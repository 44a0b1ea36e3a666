// Client side of the agent protocol and its line parsers.
#include "agent/protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "core/fd.h"

namespace walferry::agent {
namespace {

using Clock = std::chrono::steady_clock;

// Connects to the agent and checks that the process behind the socket runs as
// our own user (an agent of someone else must never vouch for our WAL).
Result<UniqueFd> Dial(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Error(ErrorCode::kInvalidArgument, "agent socket path too long: " + path);
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoError(errno, "agent socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int e = errno;
    Error err = ErrnoError(e, "agent at " + path);
    return Error(e == ENOENT ? ErrorCode::kNotFound : ErrorCode::kNetwork, err.message());
  }
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoError(errno, "agent at " + path + ": SO_PEERCRED");
  }
  if (cred.uid != ::geteuid()) {
    return Error(ErrorCode::kAuth, "agent at " + path + " runs as uid " + std::to_string(cred.uid) +
                                       ", not ours (" + std::to_string(::geteuid()) + "): not trusted");
  }
  return fd;
}

Status SendLine(int fd, const std::string& line) {
  std::size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::send(fd, line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error(ErrorCode::kNetwork, ErrnoError(errno, "writing to the agent").message());
    }
    off += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// Reads one '\n'-terminated line (without the '\n') from `fd`, keeping what
// follows in `rest`.
Result<std::string> ReadLine(int fd, std::string& rest, Clock::time_point deadline, bool bounded) {
  for (;;) {
    auto nl = rest.find('\n');
    if (nl != std::string::npos) {
      std::string line = rest.substr(0, nl);
      rest.erase(0, nl + 1);
      return line;
    }
    if (rest.size() > kMaxLine) return Error(ErrorCode::kProtocol, "agent answer line too long");
    int wait_ms = -1;
    if (bounded) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Error(ErrorCode::kNetwork, "agent did not answer in time");
      wait_ms = static_cast<int>(std::min<long long>(left, 1 << 30));
    }
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoError(errno, "waiting for the agent");
    if (r == 0) continue;  // the deadline check above ends it
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error(ErrorCode::kNetwork, ErrnoError(errno, "reading from the agent").message());
    }
    if (n == 0) return Error(ErrorCode::kNetwork, "the agent closed the connection before answering");
    rest.append(buf, static_cast<std::size_t>(n));
  }
}

bool PlainName(std::string_view n) {
  return !n.empty() && n != "." && n != ".." && n.find('/') == std::string_view::npos &&
         n.find('\0') == std::string_view::npos;
}

}  // namespace

namespace internal {

Result<AgentAnswer> ParseAnswer(std::string_view line) {
  AgentAnswer a;
  if (line.substr(0, 3) == "OK ") {
    a.ok = true;
    a.outcome = std::string(line.substr(3));
    if (a.outcome != "placed" && a.outcome != "identical" && a.outcome != "durable") {
      return Error(ErrorCode::kProtocol, "agent answered an unknown outcome");
    }
    return a;
  }
  if (line.substr(0, 4) == "ERR ") {
    std::string_view rest = line.substr(4);
    auto sp = rest.find(' ');
    std::string_view code = rest.substr(0, sp);
    int c = 0;
    auto [p, ec] = std::from_chars(code.data(), code.data() + code.size(), c);
    if (ec != std::errc() || p != code.data() + code.size() || c < 1 ||
        c > static_cast<int>(ErrorCode::kInternal) || sp == std::string_view::npos) {
      return Error(ErrorCode::kProtocol, "agent answered a malformed error");
    }
    a.code = static_cast<ErrorCode>(c);
    a.message = std::string(rest.substr(sp + 1));
    return a;
  }
  return Error(ErrorCode::kProtocol, "agent answered something that is not OK/ERR");
}

std::string FormatError(const Error& e) {
  std::string m = e.message();
  for (char& ch : m) {
    if (ch == '\n' || ch == '\r') ch = ' ';
  }
  if (m.size() > kMaxLine - 32) m.resize(kMaxLine - 32);
  return "ERR " + std::to_string(static_cast<int>(e.code())) + " " + m + "\n";
}

Result<PushRequest> ParsePushRequest(std::string_view line) {
  if (line.substr(0, 5) != "PUSH ") return Error(ErrorCode::kProtocol, "not a PUSH request");
  std::string_view rest = line.substr(5);
  auto sp = rest.find(' ');
  if (sp == std::string_view::npos) return Error(ErrorCode::kProtocol, "PUSH needs a name and a path");
  PushRequest r{std::string(rest.substr(0, sp)), std::string(rest.substr(sp + 1))};
  if (!PlainName(r.name)) return Error(ErrorCode::kProtocol, "PUSH: bad file name");
  if (r.path.empty() || r.path[0] != '/' || r.path.find('\0') != std::string::npos) {
    return Error(ErrorCode::kProtocol, "PUSH: the path must be absolute");
  }
  return r;
}

}  // namespace internal

Result<AgentAnswer> AskPush(const std::string& socket_path, const std::string& name,
                            const std::string& abs_path, std::chrono::milliseconds timeout) {
  if (!PlainName(name) || abs_path.empty() || abs_path[0] != '/' ||
      abs_path.find('\n') != std::string::npos || name.find(' ') != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "cannot ask the agent about " + abs_path);
  }
  std::string line = "PUSH " + name + " " + abs_path + "\n";
  if (line.size() > kMaxLine) return Error(ErrorCode::kInvalidArgument, "path too long for the agent");
  WF_ASSIGN(UniqueFd fd, Dial(socket_path));
  WF_TRY(SendLine(fd.get(), line));
  std::string rest;
  WF_ASSIGN(std::string answer, ReadLine(fd.get(), rest, Clock::now() + timeout, timeout.count() > 0));
  return internal::ParseAnswer(answer);
}

Result<std::map<std::string, std::string>> AskStatus(const std::string& socket_path,
                                                     std::chrono::milliseconds timeout) {
  WF_ASSIGN(UniqueFd fd, Dial(socket_path));
  WF_TRY(SendLine(fd.get(), "STATUS\n"));
  std::map<std::string, std::string> out;
  std::string rest;
  auto deadline = Clock::now() + timeout;
  for (int i = 0; i < 1000; ++i) {
    WF_ASSIGN(std::string line, ReadLine(fd.get(), rest, deadline, timeout.count() > 0));
    if (line == "END") return out;
    auto sp = line.find(' ');
    if (sp == std::string::npos) return Error(ErrorCode::kProtocol, "agent STATUS line without a value");
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return Error(ErrorCode::kProtocol, "agent STATUS answer too long");
}

}  // namespace walferry::agent
