// The receiving side of the wire protocol (`walferry serve`): one thread per
// authenticated connection, each chunk verified (decompressed with a reused
// decoder, raw length and XXH3-64 checked) before store::Incoming::Append,
// periodic Sync + ACK, and COMMITTED only after Incoming::Commit made the file
// durable under its final name. It writes through the storage interface
// (store/store.h): the disk archive or the object store, as the binary wires it.
//
// Nothing is written before authentication: Listener::Accept completes the TLS
// handshake (client certificate) and the cluster comes from its CN; an insecure
// connection's cluster is the one claimed in HELLO, and only then is the
// store touched.
//
// Thread-safety: Run is called once, from one thread; Stop from any thread
// (e.g. a signal-handling thread). ServeConnection may be called from several
// threads at once (tests use it directly over socketpairs).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "core/result.h"
#include "transport/buffer_budget.h"
#include "transport/net.h"

namespace walferry::transport {

// Resource limits (docs/operations.md, "Receiver limits"); each refusal is one
// log line and, where the peer can still read it, an ERROR frame.
struct ServerOptions {
  std::size_t max_connections = 64;        // more are answered with ERROR and closed
  std::size_t max_transfers_per_cluster = 16;  // OPENs beyond: ERROR kRefused
  // A connection must deliver its HELLO within this (after the TLS handshake,
  // which the listener bounds itself: TlsConfig::handshake_timeout).
  std::chrono::milliseconds handshake_timeout{10000};
  // Longest wait for the peer's next complete frame once HELLO is done (idle
  // between transfers, or a peer dribbling a frame byte by byte).
  std::chrono::milliseconds idle_timeout{60000};
  // Cap on the temp data in ROOT/.incoming written by one cluster's transfers
  // in progress (0 = no cap); a chunk that would exceed it ends its transfer
  // with kNoSpace.
  std::uint64_t max_incoming_bytes_per_cluster = 256ull << 30;
  // Memory all connections together may hold for frame bodies and decompressed
  // chunks (0: DefaultBufferBudget(max_connections)); a frame is admitted
  // against it before its body is allocated.
  std::uint64_t max_buffer_bytes = 0;
  // Longest wait for that memory; then the frame gets a retryable "receiver
  // busy" ERROR (kNetwork: the sender backs off and resumes).
  std::chrono::milliseconds buffer_wait{10000};
  bool insecure = false;                   // trust the cluster claimed in HELLO (loopback tests only)
  std::uint64_t sync_bytes = 8u << 20;     // Sync + ACK at least every this many raw bytes...
  std::uint32_t sync_chunks = 8;           // ...or this many chunks, whichever comes first
  std::chrono::milliseconds io_timeout{60000};
  // One line per transfer and per refused connection; default: stderr.
  std::function<void(const std::string&)> log;
};

class Server {
 public:
  Server(store::Store& store, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Accepts connections until Stop(); one thread per connection. Returns after
  // all connection threads have finished.
  Status Run(Listener& listener);
  // Closes the listener and shuts down every open connection. Idempotent.
  void Stop();

  // Serves one connection until the peer closes it, a protocol error, or Stop().
  void ServeConnection(Conn& conn);

  // Transfers completed (placed or identical) since start; for tests and logs.
  std::uint64_t transfers_done() const { return transfers_done_.load(); }
  // The shared buffer budget (its capacity, and its peak use for tests).
  const BufferBudget& buffer_budget() const { return *budget_; }

 private:
  struct Active;
  struct Watch;
  class Session;
  struct Buffers;
  std::unique_ptr<Buffers> TakeBuffers();
  void GiveBuffers(std::unique_ptr<Buffers> b);
  // Frees one spare buffer set and returns its budget; false when there is none.
  bool DropSpareBuffers();
  void Log(const std::string& line);
  void ServeWatched(Conn& conn, Watch* watch);
  // Run's accept loop: joins the threads of finished connections (all: every one).
  void Reap(bool all);
  // Starts a session for `conn`, or refuses it (too many connections);
  // false when the server is stopping.
  bool Dispatch(std::unique_ptr<Conn> conn);
  // Drops connections whose peer missed its deadline; runs on its own thread in Run.
  void WatchDeadlines();
  // Accounts `bytes` more temp space to `cluster`; kNoSpace over the cap.
  Status ReserveTemp(const std::string& cluster, std::uint64_t bytes);
  void ReleaseTemp(const std::string& cluster, std::uint64_t bytes);
  // Claims cluster/name for `conn`; a previous connection still holding the same
  // transfer id (a sender that reconnected) is shut down and waited for.
  // kRefused when `cluster` already has max_transfers_per_cluster transfers.
  Status Claim(const std::string& cluster, const std::string& key, const std::string& id, Conn* conn);
  void Release(const std::string& key, Conn* conn);

  store::Store& store_;
  ServerOptions opts_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> transfers_done_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  Listener* listener_ = nullptr;
  std::list<std::shared_ptr<Active>> conns_;
  // Refused connections still being told so (each on its own short thread).
  static constexpr std::size_t kMaxRefusing = 16;
  std::list<std::shared_ptr<Active>> refusing_;
  struct Claimed {
    std::string id;
    Conn* conn;
  };
  std::map<std::string, Claimed> claimed_;
  std::map<std::string, std::uint64_t> temp_bytes_;  // per cluster, guarded by mu_
  std::vector<std::unique_ptr<Buffers>> spare_buffers_;  // recycled across connections
  std::unique_ptr<BufferBudget> budget_;
};

}  // namespace walferry::transport
