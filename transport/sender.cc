#include "transport/sender.h"

#include <sys/random.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <future>
#include <thread>

#include "store/tar_check.h"
#include "core/buffer_pool.h"
#include "core/hash.h"
#include "core/mapped_file.h"

namespace walferry::transport {
namespace {

compress::Algorithm ToAlgorithm(WireCodec c) { return static_cast<compress::Algorithm>(c); }

// Hashes (XXH3-128) and counts everything read through it, including chunks the
// pipeline skips on resume, so COMMIT always covers the whole stream.
class HashingSource final : public ByteSource {
 public:
  // `tar`, when given, sees every byte too (the sender's own tar check).
  explicit HashingSource(ByteSource& src, store::TarCheck* tar = nullptr) : src_(src), tar_(tar) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    auto r = src_.Read(buf);
    if (r.ok()) {
      hash_.Update(buf.first(*r));
      if (tar_) tar_->Update(buf.first(*r));
      total_ += *r;
    }
    return r;
  }
  long long SizeHint() const override { return src_.SizeHint(); }
  const std::string& name() const override { return src_.name(); }
  Hash128 Digest() const { return hash_.Digest(); }
  std::uint64_t total() const { return total_; }

 private:
  ByteSource& src_;
  store::TarCheck* tar_;
  Xxh3Stream hash_;
  std::uint64_t total_ = 0;
};

// The sender applies the receiver's tar rule too (docs/archive-layout.md):
// the receiver's check is the one no sender can bypass, but a store that
// cannot read a resumed transfer's temp data back skips it, and this one
// does not depend on the store.
store::ContentCheck SenderCheck(WireKind kind) {
  switch (kind) {
    case WireKind::kTar: return store::ContentCheck::kTar;
    case WireKind::kAny:
    case WireKind::kWal: return store::ContentCheck::kNone;
    default: return store::ContentCheck::kAuto;
  }
}

Status CheckBeforeCommit(store::TarCheck& tar, const std::string& name) {
  Status st = tar.Finish();
  if (st.ok()) return st;
  return Error(ErrorCode::kRefused, name + " not committed: " + st.error().message() +
                                        "; nothing stored under the name");
}

// A chunk as it goes on the wire: the compressed frame, or the raw bytes when
// compressing did not shrink them (incompressible data; the frame would be
// bigger than the chunk).
ChunkFrame WireChunk(const compress::Chunk& c, compress::Algorithm algorithm) {
  const bool raw = c.payload.size() >= c.raw.size();
  const auto payload = raw ? c.raw : c.payload;
  return ChunkFrame{c.index,  c.raw_offset, c.raw_len, static_cast<std::uint32_t>(payload.size()),
                    raw ? WireCodec::kRaw : static_cast<WireCodec>(algorithm), c.raw_xxh3, payload};
}

Error Protocol(const std::string& what) { return Error(ErrorCode::kProtocol, "protocol error from receiver: " + what); }

}  // namespace

// Compressed chunks of a pipe that the receiver has not yet acknowledged as durable.
class Sender::Window {
 public:
  Window(std::size_t capacity, std::size_t buffer_size)
      : capacity_(capacity), pool_(buffer_size, capacity + 1) {}
  struct Entry {
    ChunkFrame head;  // payload points into buf
    PooledBuffer buf;
  };
  bool full() const { return entries_.size() >= capacity_; }
  Status Add(const ChunkFrame& c) {
    if (c.payload.size() > pool_.buffer_size()) {
      return Error(ErrorCode::kInternal, "compressed chunk larger than its window buffer");
    }
    Entry e{c, pool_.Acquire()};
    std::memcpy(e.buf.data(), c.payload.data(), c.payload.size());
    e.buf.set_size(c.payload.size());
    e.head.payload = e.buf.bytes();
    entries_.push_back(std::move(e));
    return Status::Ok();
  }
  void DropBelow(std::uint64_t index) {
    while (!entries_.empty() && entries_.front().head.index < index) entries_.pop_front();
  }
  // Index of the oldest chunk kept (or `next` when empty).
  std::uint64_t first(std::uint64_t next) const { return entries_.empty() ? next : entries_.front().head.index; }
  const std::deque<Entry>& entries() const { return entries_; }

 private:
  std::size_t capacity_;
  BufferPool pool_;
  std::deque<Entry> entries_;
};

struct Sender::Xfer {
  OpenFrame open;
  std::uint32_t ack_every = 8;
  std::uint64_t sent_in_session = 0;  // chunks sent since the last OPENED
  std::uint64_t acks_expected = 0, acks_read = 0;
  std::uint64_t durable = 0;
  std::uint64_t durable_at_failure = 0;  // retries start over once the receiver made progress
  std::uint64_t next_index = 0;       // next chunk index to send
  WireCodec codec = WireCodec::kZstd;
  Window* window = nullptr;
  SendResult result;
};

Sender::Sender(SendOptions options) : opts_(std::move(options)) {}
Sender::~Sender() { Close(); }

void Sender::Close() { Drop(); }

void Sender::Drop() {
  writer_.reset();
  reader_.reset();
  if (conn_) conn_->Shutdown();
  conn_.reset();
}

Status Sender::EnsureConnected() {
  if (conn_) return Status::Ok();
  last_error_remote_ = false;
  if (!opts_.connect) return Error(ErrorCode::kInvalidArgument, "no receiver to connect to");
  WF_ASSIGN(conn_, opts_.connect());
  conn_->SetTimeout(opts_.io_timeout);
  reader_ = std::make_unique<FrameReader>(*conn_);
  writer_ = std::make_unique<FrameWriter>(*conn_);
  Status st = writer_->Write(HelloFrame{kProtocolVersion, kFeatureNone, opts_.cluster});
  if (!st.ok()) {
    Drop();
    return st;
  }
  auto f = ReadFrame();
  if (!f.ok()) {
    Drop();
    return f.error();
  }
  if (TypeOf(*f) != FrameType::kHello) {
    Drop();
    return Protocol("expected HELLO, got " + std::string(FrameTypeName(TypeOf(*f))));
  }
  peer_features_ = std::get<HelloFrame>(*f).features;
  return Status::Ok();
}

// True when the receiver holds `name` with exactly this content (HAVE).
// `digest` is the file's XXH3-128, computed by the caller while this connects.
Result<bool> Sender::AskHave(const std::string& name, std::uint64_t size,
                             std::future<Result<Hash128>>& digest) {
  WF_TRY(EnsureConnected());
  if ((peer_features_ & kFeatureHave) == 0) return false;
  Result<Hash128> hash = digest.get();
  if (!hash.ok()) return false;  // changing under us: let the transfer judge
  WF_TRY(writer_->Write(HaveFrame{size, *hash, name}));
  WF_ASSIGN(Frame f, ReadFrame());
  if (TypeOf(f) != FrameType::kHaveReply) {
    return Protocol("expected HAVE_REPLY, got " + std::string(FrameTypeName(TypeOf(f))));
  }
  return std::get<HaveReplyFrame>(f).answer == WireHave::kIdentical;
}

Result<Frame> Sender::ReadFrame() {
  auto f = reader_->Read();
  if (!f.ok()) {
    last_error_remote_ = false;
    return f.error();
  }
  if (TypeOf(*f) == FrameType::kError) {
    const auto& e = std::get<ErrorFrame>(*f);
    last_error_remote_ = true;
    if (e.code == ErrorCode::kProtocol) ++remote_protocol_errors_;
    return Error(e.code, "receiver " + conn_->peer_address() + ": " + e.message);
  }
  return f;
}

bool Sender::Retryable(const Error& e) const {
  if (!last_error_remote_) return e.code() == ErrorCode::kNetwork;
  // The receiver refused our frames: a damaged path without TLS may explain it
  // once or twice, but a sender that keeps producing frames the receiver
  // refuses will not get better by retrying (kMaxProtocolRetries per transfer,
  // whatever progress is made between them).
  if (e.code() == ErrorCode::kProtocol) return remote_protocol_errors_ <= kMaxProtocolRetries;
  // The receiver saw damaged bytes (a flaky path without TLS) or went away.
  return e.code() == ErrorCode::kCorrupt || e.code() == ErrorCode::kNetwork;
}

void Sender::Backoff(int attempt) {
  auto d = opts_.backoff_initial;
  for (int i = 1; i < attempt && d < opts_.backoff_max; ++i) d *= 2;
  std::this_thread::sleep_for(std::min(d, opts_.backoff_max));
}

Result<OpenedFrame> Sender::Open(Xfer& x) {
  WF_TRY(EnsureConnected());
  WF_TRY(writer_->Write(x.open));
  WF_ASSIGN(Frame f, ReadFrame());
  if (TypeOf(f) != FrameType::kOpened) {
    return Protocol("expected OPENED, got " + std::string(FrameTypeName(TypeOf(f))));
  }
  OpenedFrame o = std::get<OpenedFrame>(f);
  if (o.resume_raw_offset != o.resume_from_chunk * x.open.chunk_size ||
      (x.open.raw_size != kUnknownSize && o.resume_raw_offset > x.open.raw_size)) {
    return Protocol("resume point " + std::to_string(o.resume_from_chunk) + " does not fit this transfer");
  }
  x.ack_every = o.ack_every;
  x.sent_in_session = x.acks_expected = x.acks_read = 0;
  x.durable = o.resume_from_chunk;
  x.codec = o.codec;
  return o;
}

Result<OpenedFrame> Sender::OpenWithRetry(Xfer& x, int* attempt) {
  for (;;) {
    auto o = Open(x);
    if (o.ok()) return o;
    Drop();
    if (!Retryable(o.error()) || *attempt >= opts_.max_retries) return o.error();
    ++*attempt;
    ++x.result.reconnects;
    if (opts_.note) opts_.note("retrying after: " + o.error().message());
    Backoff(*attempt);
  }
}

Status Sender::ReadAck(Xfer& x) {
  WF_ASSIGN(Frame f, ReadFrame());
  if (TypeOf(f) != FrameType::kAck) {
    return Protocol("expected ACK, got " + std::string(FrameTypeName(TypeOf(f))));
  }
  x.durable = std::max(x.durable, std::get<AckFrame>(f).durable_chunks);
  ++x.acks_read;
  if (x.window) x.window->DropBelow(x.durable);
  return Status::Ok();
}

Status Sender::SendChunk(Xfer& x, const ChunkFrame& c) {
  Status st = writer_->WriteChunk(c);
  if (!st.ok()) {
    // The receiver may have sent an ERROR before closing; prefer its reason.
    conn_->SetTimeout(std::chrono::milliseconds(2000));
    for (int i = 0; i < 64; ++i) {
      auto f = ReadFrame();
      if (!f.ok()) {
        if (last_error_remote_) return f.error();
        break;
      }
    }
    last_error_remote_ = false;
    return st;
  }
  x.result.wire_bytes += c.payload.size();
  ++x.sent_in_session;
  if (x.sent_in_session % x.ack_every == 0) ++x.acks_expected;
  // At most two ACK intervals in flight; a full window waits for the oldest ACK.
  while (x.acks_expected - x.acks_read >= 2 ||
         (x.window && x.window->full() && x.acks_expected > x.acks_read)) {
    WF_TRY(ReadAck(x));
  }
  return Status::Ok();
}

Result<WireOutcome> Sender::Commit(Xfer& x, std::uint64_t size, const Hash128& hash) {
  WF_TRY(writer_->Write(CommitFrame{size, hash}));
  for (;;) {
    WF_ASSIGN(Frame f, ReadFrame());
    if (TypeOf(f) == FrameType::kAck) {
      x.durable = std::max(x.durable, std::get<AckFrame>(f).durable_chunks);
      continue;
    }
    if (TypeOf(f) == FrameType::kCommitted) return std::get<CommittedFrame>(f).outcome;
    return Protocol("expected COMMITTED, got " + std::string(FrameTypeName(TypeOf(f))));
  }
}

compress::PipelineOptions Sender::Pipeline(WireCodec codec) const {
  compress::PipelineOptions p;
  p.algorithm = ToAlgorithm(codec);
  p.level = opts_.level > 0 ? opts_.level : compress::DefaultLevel(p.algorithm);
  if (p.algorithm == compress::Algorithm::kGzip) p.level = std::clamp(p.level, 1, 12);
  if (p.algorithm == compress::Algorithm::kZstd) p.level = std::clamp(p.level, 1, 19);
  p.chunk_size = opts_.chunk_size;
  p.threads = opts_.threads;
  p.in_flight = opts_.in_flight;
  return p;
}

Result<std::array<std::uint8_t, 16>> FileTransferId(const std::string& path, const std::string& name,
                                                    std::size_t chunk_size) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, path);
  std::string key = "walferry-file-v1";
  key.push_back('\0');
  key += name;
  key.push_back('\0');
  for (std::uint64_t v : {std::uint64_t(st.st_size), std::uint64_t(st.st_mtim.tv_sec),
                          std::uint64_t(st.st_mtim.tv_nsec), std::uint64_t(st.st_ino),
                          std::uint64_t(st.st_dev), std::uint64_t(chunk_size)}) {
    key.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  Hash128 h = Xxh3_128({reinterpret_cast<const std::byte*>(key.data()), key.size()});
  std::array<std::uint8_t, 16> id{};
  std::memcpy(id.data(), &h.high, 8);
  std::memcpy(id.data() + 8, &h.low, 8);
  return id;
}

std::array<std::uint8_t, 16> RandomTransferId() {
  std::array<std::uint8_t, 16> id{};
  std::size_t got = 0;
  while (got < id.size()) {
    ssize_t n = ::getrandom(id.data() + got, id.size() - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  return id;
}

Result<SendResult> Sender::SendFile(const std::string& path, const std::string& name) {
  remote_protocol_errors_ = 0;
  Xfer x;
  x.open.name = name;
  x.open.kind = opts_.kind;
  x.open.chunk_size = static_cast<std::uint32_t>(opts_.chunk_size);
  WF_ASSIGN(x.open.transfer_id, FileTransferId(path, name, opts_.chunk_size));
  {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, path);
    if (!S_ISREG(st.st_mode)) return Error(ErrorCode::kInvalidArgument, path + ": not a regular file");
    x.open.raw_size = static_cast<std::uint64_t>(st.st_size);
  }
  if (opts_.ask_have) {
    // The hash (a few ms for a segment) runs beside the TLS handshake (as long):
    // a primary pays both on every push.
    auto digest = std::async(std::launch::async, HashWholeFile, path, x.open.raw_size);
    auto have = AskHave(name, x.open.raw_size, digest);
    if (have.ok() && *have) {
      x.result.outcome = WireOutcome::kIdentical;
      x.result.raw_bytes = x.open.raw_size;
      return x.result;
    }
    if (!have.ok()) Drop();  // the ordinary transfer below reconnects and reports
  }
  int attempt = 0;
  bool first = true;
  for (;;) {
    // Each attempt: OPEN (learn the resume point), re-read the file skipping
    // what is durable, COMMIT.
    auto attempt_result = [&]() -> Result<WireOutcome> {
      WF_ASSIGN(OpenedFrame o, OpenWithRetry(x, &attempt));
      if (first) x.result.resumed_from = o.resume_from_chunk;
      first = false;
      WF_ASSIGN(auto src, OpenSource(path));
      store::TarCheck tar(SenderCheck(opts_.kind));
      HashingSource hs(*src, &tar);
      auto popts = Pipeline(o.codec);
      popts.skip_chunks = o.resume_from_chunk;
      x.next_index = o.resume_from_chunk;
      Status st = compress::CompressChunks(hs, popts, [&](const compress::Chunk& c) -> Status {
        if (c.index != x.next_index || c.raw_offset != c.index * opts_.chunk_size) {
          return Error(ErrorCode::kInternal, "pipeline emitted chunk " + std::to_string(c.index) +
                                                 ", expected " + std::to_string(x.next_index));
        }
        WF_TRY(SendChunk(x, WireChunk(c, popts.algorithm)));
        ++x.next_index;
        if (opts_.progress) opts_.progress(c.raw_offset + c.raw_len);
        return Status::Ok();
      });
      WF_TRY(st);
      if (hs.total() != x.open.raw_size) {
        return Error(ErrorCode::kIo, path + " changed size while being sent (" + std::to_string(x.open.raw_size) +
                                         " -> " + std::to_string(hs.total()) + " bytes)");
      }
      WF_TRY(CheckBeforeCommit(tar, name));
      x.result.hash = hs.Digest();
      return Commit(x, hs.total(), x.result.hash);
    }();
    if (attempt_result.ok()) {
      x.result.outcome = *attempt_result;
      x.result.raw_bytes = x.open.raw_size;
      return x.result;
    }
    const Error& e = attempt_result.error();
    if (x.durable > x.durable_at_failure) attempt = 0;
    x.durable_at_failure = x.durable;
    bool retry = Retryable(e) && attempt < opts_.max_retries;
    Drop();
    if (!retry) return e;
    ++attempt;
    ++x.result.reconnects;
    if (opts_.note) opts_.note("retrying after: " + e.message());
    Backoff(attempt);
  }
}

Status Sender::Recover(Xfer& x, int* attempt) {
  if (x.durable > x.durable_at_failure) *attempt = 0;
  x.durable_at_failure = x.durable;
  for (;;) {
    Drop();
    if (*attempt >= opts_.max_retries) return Error(ErrorCode::kNetwork, "gave up after retries");
    ++*attempt;
    ++x.result.reconnects;
    Backoff(*attempt);
    auto o = Open(x);
    if (!o.ok()) {
      if (!Retryable(o.error())) return o.error();
      if (opts_.note) opts_.note("retrying after: " + o.error().message());
      continue;
    }
    std::uint64_t r = o->resume_from_chunk;
    std::uint64_t first = x.window->first(x.next_index);
    if (r < first || r > x.next_index) {
      Drop();
      return Error(ErrorCode::kNetwork,
                   "cannot resume " + x.open.name + ": the receiver has " + std::to_string(r) +
                       " chunks durable but chunks before " + std::to_string(first) +
                       " are no longer held in memory (a pipe cannot be re-read); send it again");
    }
    x.window->DropBelow(r);
    Status st = Status::Ok();
    for (const auto& e : x.window->entries()) {
      if (e.head.index >= x.next_index) break;
      st = SendChunk(x, e.head);
      if (!st.ok()) break;
    }
    if (st.ok()) return st;
    if (!Retryable(st.error())) return st;
    if (opts_.note) opts_.note("retrying after: " + st.error().message());
  }
}

Result<SendResult> Sender::SendStream(ByteSource& src, const std::string& name) {
  remote_protocol_errors_ = 0;
  Xfer x;
  x.open.name = name;
  x.open.kind = opts_.kind;
  x.open.chunk_size = static_cast<std::uint32_t>(opts_.chunk_size);
  x.open.transfer_id = RandomTransferId();
  long long hint = src.SizeHint();
  x.open.raw_size = hint >= 0 ? static_cast<std::uint64_t>(hint) : kUnknownSize;
  int attempt = 0;
  WF_ASSIGN(OpenedFrame o, OpenWithRetry(x, &attempt));
  if (o.resume_from_chunk != 0) return Protocol("a new transfer was offered a resume point");
  // Enough room for two ACK intervals plus the chunks in the pipeline's hands.
  std::size_t capacity = 2 * std::size_t{x.ack_every} + 2;
  std::size_t buf = opts_.chunk_size;  // WireChunk never sends more than the raw chunk
  Window window(capacity, buf);
  x.window = &window;
  store::TarCheck tar(SenderCheck(opts_.kind));
  HashingSource hs(src, &tar);
  auto popts = Pipeline(o.codec);
  Status st = compress::CompressChunks(hs, popts, [&](const compress::Chunk& c) -> Status {
    if (c.index != x.next_index) {
      return Error(ErrorCode::kInternal, "pipeline emitted chunk " + std::to_string(c.index) +
                                             ", expected " + std::to_string(x.next_index));
    }
    const ChunkFrame f = WireChunk(c, popts.algorithm);
    // Make room (wait for ACKs) before copying into the window.
    while (window.full() && conn_ && x.acks_expected > x.acks_read) {
      Status a = ReadAck(x);
      if (!a.ok()) {
        if (!Retryable(a.error())) return a;
        WF_TRY(Recover(x, &attempt));
      }
    }
    if (window.full()) return Error(ErrorCode::kInternal, "resend window full without pending ACKs");
    WF_TRY(window.Add(f));
    ++x.next_index;
    Status s = conn_ ? SendChunk(x, window.entries().back().head) : Error(ErrorCode::kNetwork, "not connected");
    if (!s.ok()) {
      if (!Retryable(s.error())) return s;
      if (opts_.note) opts_.note("retrying after: " + s.error().message());
      WF_TRY(Recover(x, &attempt));  // resends everything not durable, including this chunk
    }
    if (opts_.progress) opts_.progress(c.raw_offset + c.raw_len);
    return Status::Ok();
  });
  if (!st.ok()) {
    Drop();
    return st.error();
  }
  if (Status t = CheckBeforeCommit(tar, name); !t.ok()) {
    Drop();
    return t.error();
  }
  for (;;) {
    auto r = Commit(x, hs.total(), hs.Digest());
    if (r.ok()) {
      x.result.outcome = *r;
      x.result.raw_bytes = hs.total();
      return x.result;
    }
    if (!Retryable(r.error())) {
      Drop();
      return r.error();
    }
    if (opts_.note) opts_.note("retrying after: " + r.error().message());
    Status rs = Recover(x, &attempt);
    if (!rs.ok()) {
      Drop();
      return rs.error();
    }
  }
}

}  // namespace walferry::transport
