// Where the local agent listens, and whether it does.
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <cstring>

#include "core/fd.h"
#include "pg/status.h"

namespace walferry::pg {

std::string AgentSocketPath(const std::string& explicit_path, const std::string& archive_command,
                            const std::string& module_socket) {
  if (!explicit_path.empty()) return explicit_path;
  if (archive_command.find("walferry") != std::string::npos) {
    // "... push %p --agent-socket PATH ..." or "--agent-socket=PATH", maybe quoted.
    std::string_view cmd = archive_command;
    for (std::string_view opt : {"--agent-socket=", "--agent-socket "}) {
      auto p = cmd.find(opt);
      if (p == std::string_view::npos) continue;
      std::string_view rest = cmd.substr(p + opt.size());
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      char quote = !rest.empty() && (rest.front() == '\'' || rest.front() == '"') ? rest.front() : 0;
      if (quote) rest.remove_prefix(1);
      auto end = rest.find(quote ? quote : ' ');
      std::string path(rest.substr(0, end));
      if (!path.empty()) return path;
    }
  }
  if (!module_socket.empty()) return module_socket;
  const char* env = std::getenv("WALFERRY_AGENT_SOCKET");
  return env && *env ? env : "/run/walferry/agent.sock";
}

bool AgentRunning(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return false;
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace walferry::pg
