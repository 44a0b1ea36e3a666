// `walferry agent`: a long-running helper on the primary that archives WAL
// ahead of PostgreSQL's archiver.
//
// It watches <pgdata>/pg_wal/archive_status for *.ready (inotify, plus a full
// rescan every `rescan` period), and ships the files they name to the
// receiver over persistent connections (one transport::Sender each, up to
// `parallel` transfers at once): timeline history files first, then the
// oldest name first, as PostgreSQL's archiver orders them. It serves
// `walferry push` (and the archive module) on a unix socket (protocol.h):
// a request is answered OK at once when the agent already made that exact
// file (size and XXH3-128, hashed when the request arrives) durable on the
// receiver; otherwise the file is shipped ahead of all read-ahead work and
// the answer comes when the receiver has committed it, or with its error.
//
// Guarantees: OK only after the receiver's COMMITTED for the same name, size
// and hash; .ready/.done files are never touched (PostgreSQL marks a segment
// archived only after its own archive_command/module call succeeded); WAL is
// never dropped: a failing transfer is retried and reported (log line,
// STATUS last_error), never skipped.
//
// Socket safety: the socket's directory must belong to the agent's user and
// allow nobody else (mode 0700; created so when missing); the socket is
// mode 0600 and every client's uid is checked (SO_PEERCRED) against ours.
//
// Thread-safety: Run() blocks on the calling thread; Stop() may be called
// from any thread (or after a signal) and makes Run() return.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.h"
#include "transport/sender.h"

namespace walferry::agent {

struct AgentOptions {
  std::string pgdata;          // data directory; its pg_wal/archive_status is watched
  std::string socket_path;     // where to listen
  transport::SendOptions send; // how to reach the receiver (kind is forced to kWal)
  int parallel = 2;            // transfers (and connections) at once, >= 1
  int ahead = 64;              // at most this many .ready files known ahead of the archiver
  std::chrono::milliseconds rescan{2000};  // full rescan period (inotify does the rest)
  std::chrono::milliseconds retry{2000};   // wait before shipping a failed file ahead again
  // One line per event worth telling (may be empty); `warning` marks failures
  // and refusals (the CLI logs them at WARN, the rest at INFO).
  std::function<void(bool warning, const std::string&)> log;
};

// Figures for `walferry status` and metrics (STATUS answers these, see docs/agent.md).
struct AgentStats {
  std::uint64_t shipped_files = 0, shipped_bytes = 0;   // made durable by this agent
  std::uint64_t requests = 0, requests_hit = 0;         // PUSH requests; answered from what was shipped ahead
  std::uint64_t failures = 0;                           // failed transfers
  std::uint64_t ready_files = 0, ready_bytes = 0;       // .ready seen at the last scan
  std::int64_t oldest_ready_epoch = 0;                  // mtime of the oldest .ready (0 = none)
  std::int64_t last_success_epoch = 0, last_failure_epoch = 0;
  std::string last_error;
  int in_flight = 0, queued = 0;
  std::int64_t started_epoch = 0;
};

class Agent {
 public:
  // Checks the data directory, binds the socket. Errors: kInvalidArgument (bad
  // options, no archive_status), kAuth (socket directory not private), I/O.
  static Result<std::unique_ptr<Agent>> Start(AgentOptions options);
  virtual ~Agent() = default;
  virtual Status Run() = 0;
  virtual void Stop() = 0;
  virtual AgentStats Stats() const = 0;
};

}  // namespace walferry::agent
