// The sending side of the wire protocol: compresses a file or a pipe in
// parallel (compress::CompressChunks) and streams it to a receiver as
// checksummed chunks, resuming after connection loss.
//
// Resume:
//  - A file's transfer id is XXH3-128 of (name, size, mtime, inode, device,
//    chunk size), so running the same `send`/`push` again continues after the
//    last chunk the receiver had made durable (OPENED.resume_from_chunk becomes
//    PipelineOptions.skip_chunks). Within one call a broken connection is
//    retried with exponential backoff the same way (the file is re-read).
//  - A pipe gets a random id. Chunks not yet acknowledged as durable are kept
//    (as compressed copies in pooled buffers) in a bounded window and resent
//    after a reconnect. If the receiver's resume point is older than the
//    window (it lost its state) the transfer fails with a clear message.
//
// Thread-safety: a Sender is used by one thread. It keeps one connection open
// across transfers (one connection carries many transfers).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "compress/codec.h"
#include "core/hash.h"
#include "core/result.h"
#include "core/stream.h"
#include "transport/net.h"
#include "transport/wire.h"

namespace walferry::transport {

using ConnFactory = std::function<Result<std::unique_ptr<Conn>>()>;

struct SendOptions {
  ConnFactory connect;          // opens an authenticated connection (Connect(ep, tls))
  std::string cluster;          // claimed in HELLO; used by an insecure receiver only
  WireKind kind = WireKind::kAuto;  // kWal: receiver refuses names that are not WAL names
  int level = 0;                // compression level; 0 = the default of the codec the receiver asks for
  bool level_fixed = false;     // true when the user chose the level (-l)
  std::size_t chunk_size = 1u << 20;
  std::size_t threads = 0;      // compression threads; 0 = all cores
  std::size_t in_flight = 0;    // pipeline depth; 0 = the pipeline's default
  int max_retries = 8;          // reconnects per transfer before giving up
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds io_timeout{60000};
  // Called from the sending thread after each chunk with the raw bytes sent so far.
  std::function<void(std::uint64_t raw_done)> progress;
  // SendFile asks the receiver first (HAVE, when it announced kFeatureHave)
  // whether it already stores the name with the file's size and XXH3-128; if
  // so the file is not shipped (outcome kIdentical, wire_bytes 0). Costs one
  // round trip, and one read of the file only when the receiver holds the name
  // (kFeatureHaveProbe) or cannot say; any failure of the question falls back
  // to the ordinary transfer.
  bool ask_have = false;
  // Called with a one-line note on each reconnect (e.g. for stderr); may be empty.
  std::function<void(const std::string&)> note;
};

struct SendResult {
  WireOutcome outcome = WireOutcome::kPlaced;
  std::uint64_t raw_bytes = 0;        // size of the stream
  std::uint64_t wire_bytes = 0;       // chunk payload bytes written to the network (resends included)
  std::uint64_t resumed_from = 0;     // chunks already durable on the receiver at the first OPEN
  int reconnects = 0;
  Hash128 hash{};                     // XXH3-128 of the raw bytes sent (the receiver checked it)
};

class Sender {
 public:
  explicit Sender(SendOptions options);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Sends the regular file at `path` under archive name `name`. Succeeds only
  // when the receiver answered COMMITTED (durable: placed or identical).
  // Errors: the receiver's ERROR (code and message as sent), kNetwork when it
  // cannot be reached after the retries, kAuth, local I/O errors.
  Result<SendResult> SendFile(const std::string& path, const std::string& name);

  // Sends a stream that cannot be re-read (stdin, a pipe) under `name`.
  Result<SendResult> SendStream(ByteSource& src, const std::string& name);

  // Closes the connection (also done by the destructor).
  void Close();

 private:
  struct Xfer;
  class Window;
  Status EnsureConnected();
  void Drop();
  Result<Frame> ReadFrame();
  Result<OpenedFrame> Open(Xfer& x);
  Result<OpenedFrame> OpenWithRetry(Xfer& x, int* attempt);
  Status SendChunk(Xfer& x, const ChunkFrame& c);
  Status ReadAck(Xfer& x);
  Result<WireOutcome> Commit(Xfer& x, std::uint64_t size, const Hash128& hash);
  Status Recover(Xfer& x, int* attempt);
  // One attempt of SendFile: OPEN, the file from the resume point, COMMIT.
  // `first`: the first OPEN that succeeds records the resume point.
  Result<WireOutcome> SendFileOnce(Xfer& x, const std::string& path, int* attempt, bool* first);
  // One chunk of SendStream: into the window, then sent (Recover on loss).
  Status StreamChunk(Xfer& x, const ChunkFrame& f, int* attempt);
  // SendStream's COMMIT, recovering and resending until it is answered.
  Result<SendResult> CommitStream(Xfer& x, std::uint64_t size, const Hash128& hash, int* attempt);
  bool Retryable(const Error& e) const;
  void Backoff(int attempt);
  compress::PipelineOptions Pipeline(WireCodec codec) const;

  SendOptions opts_;
  std::unique_ptr<Conn> conn_;
  std::unique_ptr<FrameReader> reader_;
  std::unique_ptr<FrameWriter> writer_;
  bool last_error_remote_ = false;
  std::uint32_t peer_features_ = 0;  // from the receiver's HELLO
  Result<bool> AskHave(const std::string& path, const std::string& name, std::uint64_t size);
  Result<WireHave> Have(const HaveFrame& question);
  // ERROR kProtocol frames received during the current transfer; retried at
  // most kMaxProtocolRetries times.
  static constexpr int kMaxProtocolRetries = 2;
  int remote_protocol_errors_ = 0;
};

// Transfer id of a regular file (see above); kIo if it cannot be stat'ed.
Result<std::array<std::uint8_t, 16>> FileTransferId(const std::string& path, const std::string& name,
                                                    std::size_t chunk_size);
// 128 random bits.
std::array<std::uint8_t, 16> RandomTransferId();

}  // namespace walferry::transport
