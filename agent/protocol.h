// The agent's local protocol: one unix stream socket, one request line per
// exchange, answered by one line (PUSH, PING) or a block of lines (STATUS).
// Written down in docs/agent.md; walferry push, the archive module
// (pgmodule/walferry_archive.c) and `walferry status` speak it.
//
//   PUSH <name> <absolute path>\n   -> OK <placed|identical|durable>\n
//                                     | ERR <error code> <one-line message>\n
//   PING\n                          -> PONG <pid>\n
//   STATUS\n                        -> "<key> <value>\n"... then "END\n"
//
// <error code> is the number of the walferry::ErrorCode (core/result.h) of the
// failure, so the client reports it as if it had failed itself.
//
// A request line is at most kMaxLine bytes. The agent answers OK only when the
// file at <path>, as it is when the request is read, is durable on the
// receiver under <name> (same size, same XXH3-128).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>

#include "core/result.h"

namespace walferry::agent {

inline constexpr std::size_t kMaxLine = 8192;

struct AgentAnswer {
  bool ok = false;
  std::string outcome;  // ok: placed, identical or durable
  ErrorCode code = ErrorCode::kOk;  // !ok: what failed
  std::string message;  // !ok: the agent's one-line reason
};

// Client side of PUSH. Errors (the agent could not be asked, the caller
// should work without it): kNotFound / kNetwork when nothing listens at
// `socket_path` or the connection breaks before the answer, kProtocol on a
// malformed answer, kAuth when the socket is not owned by this user.
// `timeout` bounds the whole exchange (0 = wait as long as it takes).
Result<AgentAnswer> AskPush(const std::string& socket_path, const std::string& name,
                            const std::string& abs_path, std::chrono::milliseconds timeout);

// Client side of STATUS: the key/value pairs the agent reported.
Result<std::map<std::string, std::string>> AskStatus(const std::string& socket_path,
                                                     std::chrono::milliseconds timeout);

namespace internal {
// Parses "OK outcome" / "ERR code message"; kProtocol otherwise.
std::string FormatError(const Error& e);  // the ERR line (with '\n'), message made one line
Result<AgentAnswer> ParseAnswer(std::string_view line);
// Splits "PUSH name path"; kProtocol on anything else. The name must be a
// plain file name (no '/', not "." or ".."); the path must be absolute.
struct PushRequest {
  std::string name, path;
};
Result<PushRequest> ParsePushRequest(std::string_view line);
}  // namespace internal

}  // namespace walferry::agent
