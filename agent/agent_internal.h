// The agent's one implementation (agent/agent.h), shared by its files; only
// agent/ includes this.
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
//
// Files: agent.cc (start, the accept loop, stop), agent_socket.cc (the
// private unix socket), agent_scan.cc (read-ahead from archive_status),
// agent_worker.cc (the senders), agent_client.cc (PUSH/STATUS/PING requests).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent.h"
#include "agent/protocol.h"
#include "core/fd.h"
#include "core/hash.h"

namespace walferry::agent::internal {

using Clock = std::chrono::steady_clock;

std::int64_t NowEpoch();

// PostgreSQL's archiver order (pgarch.c, ready_file_comparator): timeline
// history files first, then by name.
bool ArchiveOrder(const std::string& a, const std::string& b);
struct OrderCmp {
  bool operator()(const std::string& a, const std::string& b) const { return ArchiveOrder(a, b); }
};

struct FileId {
  std::uint64_t size = 0;
  Hash128 hash;
};

// Size and XXH3-128 of the file at `path` as it is now.
Result<FileId> HashFile(const std::string& path);

// A listening unix socket at `path` (mode 0600) in a private directory
// (owned by this user, mode 0700; created when missing). A socket file left
// by a dead agent is replaced; a live agent's is kExists.
Result<UniqueFd> ListenPrivate(const std::string& path);

class AgentImpl final : public Agent {
 public:
  explicit AgentImpl(AgentOptions o);
  ~AgentImpl() override;

  Status Init();
  Status Run() override;
  void Stop() override;
  AgentStats Stats() const override;

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
  void JoinAll();

  // ---- read-ahead: scanning archive_status (agent_scan.cc) ----
  void Scanner();
  void Scan();

  // ---- workers (agent_worker.cc) ----
  // The next file to ship, marked in flight; "" when stopping.
  std::string Take(std::unique_lock<std::mutex>& lk);
  void Worker();
  // Records how shipping `name` ended (`gone`: its .ready vanished first).
  void Record(const std::string& name, bool gone, const Result<transport::SendResult>& r,
              std::unique_lock<std::mutex>& lk);

  // ---- clients (agent_client.cc) ----
  void Client(UniqueFd fd);
  bool ReadRequest(int fd, std::string& line);
  std::string Push(const PushRequest& req);
  std::string StatusText();

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

}  // namespace walferry::agent::internal
