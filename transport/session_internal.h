// The receiver's per-connection state (transport/server.h's Server::Session)
// and what the server keeps per connection; only transport/server.cc and
// transport/session*.cc include this.
//
// Where each part lives:
//   session.cc           the frame loop, HELLO, frame admission against the
//                        buffer budget, ERROR replies;
//   session_transfer.cc  OPEN .. CHUNK* .. COMMIT (a transfer into the store);
//   session_read.cc      HAVE and FETCH (answers read from the store).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "compress/codec.h"
#include "store/store.h"
#include "transport/chunk_decoders_internal.h"
#include "transport/server.h"
#include "transport/wire.h"

namespace walferry::transport {

// What the deadline watchdog knows of one connection: when its peer must have
// delivered the frame the session waits for (0: not waiting on the peer).
struct Server::Watch {
  std::atomic<std::int64_t> deadline_ms{0};  // steady clock, milliseconds
  std::atomic<bool> in_hello{true};
  std::atomic<bool> fired{false};
};

struct Server::Active {
  std::unique_ptr<Conn> conn;
  std::thread thread;
  std::atomic<bool> done{false};
  Watch watch;
};

// Per-connection buffers, recycled: fresh pages are expensive on these machines.
// Their capacity never exceeds `leased`, their share of the buffer budget.
struct Server::Buffers {
  std::vector<std::byte> frame;
  std::vector<std::byte> raw;
  std::uint64_t leased = 0;
};

namespace internal {

// Steady clock in milliseconds (the watchdog's deadlines).
std::int64_t NowMs();
// Milliseconds since `t0`, as text for a log line.
std::string MsSince(std::chrono::steady_clock::time_point t0);

}  // namespace internal

// One connection's protocol state machine.
class Server::Session final : public FrameAdmission {
 public:
  Session(Server& server, Conn& conn, Watch* watch);
  ~Session();

  void Run();

 private:
  // A frame body is admitted against the server's buffer budget before it
  // is allocated (transport/buffer_budget.h). Within what this connection
  // already holds nothing waits; otherwise it frees its own buffers first
  // and asks for the whole need at once (no connection holds part of what
  // it waits for), for at most buffer_wait, while the idle clock stops.
  Status Admit(const FrameHeader& h) override;
  // Reads the peer's next frame under the watchdog's deadline (HELLO: the
  // handshake timeout; later: the idle timeout). The clock runs only while
  // waiting for the peer, never while the receiver itself works.
  Result<Frame> ReadFrame();
  // Arms the watchdog for the frame the peer is to deliver next.
  void ArmDeadline();
  Status Hello();
  // Sends ERROR, logs, and lingers briefly reading what the peer still sends so
  // that it can read the ERROR instead of a connection reset.
  void Fail(const Error& e, const std::string& what);
  // "serve: PEER cluster=CLUSTER", the start of a session's log lines.
  std::string Prefix() const;

  // HAVE: answers whether this cluster stores NAME with exactly that raw size
  // and XXH3-128 (reading the stored copy in full). Errors while looking are
  // answered kAbsent: the sender then ships the file and Commit decides.
  bool Have(const HaveFrame& have);
  // FETCH (restore side): streams a stored entry of this connection's cluster
  // as OPEN, CHUNKs (zstd level 1, XXH3-64 of each raw chunk) and COMMIT
  // (size, XXH3-128). A missing entry gets ERROR kNotFound without a log line
  // (PostgreSQL polls for segments that do not exist yet). Returns false when
  // the connection must close.
  bool Fetch(const FetchFrame& fetch);

  // OPEN .. COMMIT. Returns false when the connection must close.
  bool Transfer(const OpenFrame& open);
  // Opens incoming_ for `spec` (resumed where the saved state fits the
  // chunking, else from zero) behind the content rule; logs its notes.
  Status BeginIncoming(const store::TransferSpec& spec, std::uint32_t chunk_size, const std::string& what);
  // How many chunks between Sync + ACK for this transfer.
  std::uint32_t AckInterval(const OpenFrame& open) const;
  // Figures of one transfer for its log line.
  struct Figures {
    std::chrono::steady_clock::time_point t0;
    std::uint64_t resumed = 0;  // chunks already durable at OPEN
    std::uint64_t received = 0, wire = 0;
  };
  // CHUNK* then COMMIT, after OPENED.
  bool Receive(const OpenFrame& open, const std::string& what, Figures& figures);
  // COMMIT: Incoming::Commit, then COMMITTED and the transfer's log line.
  bool Commit(const OpenFrame& open, const CommitFrame& c, const std::string& what, const Figures& figures);
  // One CHUNK: order, bounds, decoding, checksum, then Incoming::Append.
  Status Chunk(const OpenFrame& open, const ChunkFrame& c);
  // The raw bytes of a compressed CHUNK, in bufs_->raw.
  Result<std::span<const std::byte>> Decode(const ChunkFrame& c);
  // Error during a transfer: keep what is durable for a resume (network loss,
  // damaged chunk, protocol slip) or drop it (archive refused it, disk full).
  bool Keep(const std::string& what, const Error& e);
  bool Drop(const std::string& what, const Error& e);

  Server& s_;
  Conn& conn_;
  Watch* watch_;  // null when served without Run (tests over socketpairs)
  std::uint64_t reserved_ = 0;  // temp bytes accounted to cluster_ for this transfer
  std::uint32_t chunk_size_ = 0;  // chunk size of the transfer in progress (0: none)
  bool busy_ = false;             // the buffer budget refused a frame: tell the peer to retry
  std::unique_ptr<Buffers> bufs_;
  FrameReader reader_;
  FrameWriter writer_;
  std::string cluster_;
  std::unique_ptr<store::Incoming> incoming_;
  internal::ChunkDecoders decoders_;
};

}  // namespace walferry::transport
