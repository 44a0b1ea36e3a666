// The sender's conversation with the receiver: connection and HELLO, HAVE,
// OPEN with retries, CHUNK with ACK pacing, COMMIT. Whole transfers:
// send_file.cc (a file, re-read on resume), send_stream.cc (a pipe, resent
// from the window).
#include "transport/sender.h"

#include <algorithm>
#include <thread>

#include "core/mapped_file.h"
#include "transport/sender_internal.h"

namespace walferry::transport {
namespace internal {

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

ChunkFrame WireChunk(const compress::Chunk& c, compress::Algorithm algorithm) {
  const bool raw = c.payload.size() >= c.raw.size();
  const auto payload = raw ? c.raw : c.payload;
  return ChunkFrame{c.index,  c.raw_offset, c.raw_len, static_cast<std::uint32_t>(payload.size()),
                    raw ? WireCodec::kRaw : static_cast<WireCodec>(algorithm), c.raw_xxh3, payload};
}

Error ProtocolError(const std::string& what) {
  return Error(ErrorCode::kProtocol, "protocol error from receiver: " + what);
}

}  // namespace internal

using internal::ProtocolError;

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
    return ProtocolError("expected HELLO, got " + std::string(FrameTypeName(TypeOf(*f))));
  }
  peer_features_ = std::get<HelloFrame>(*f).features;
  return Status::Ok();
}

// True when the receiver holds `name` with exactly this content (HAVE). The
// file `path` is hashed only when the receiver holds the name, or cannot say.
Result<bool> Sender::AskHave(const std::string& path, const std::string& name, std::uint64_t size) {
  WF_TRY(EnsureConnected());
  if ((peer_features_ & kFeatureHave) == 0) return false;
  if ((peer_features_ & kFeatureHaveProbe) != 0) {
    // The name first: a file the receiver does not hold (nearly every push)
    // costs no read of it here; the transfer hashes it as it sends.
    WF_ASSIGN(WireHave present, Have(HaveFrame{kUnknownSize, Hash128{}, name}));
    if (present != WireHave::kPresent) return false;
  }
  Result<Hash128> hash = HashWholeFile(path, size);
  if (!hash.ok()) return false;  // changing under us: let the transfer judge
  WF_ASSIGN(WireHave answer, Have(HaveFrame{size, *hash, name}));
  return answer == WireHave::kIdentical;
}

Result<WireHave> Sender::Have(const HaveFrame& question) {
  WF_TRY(writer_->Write(question));
  WF_ASSIGN(Frame f, ReadFrame());
  if (TypeOf(f) != FrameType::kHaveReply) {
    return ProtocolError("expected HAVE_REPLY, got " + std::string(FrameTypeName(TypeOf(f))));
  }
  return std::get<HaveReplyFrame>(f).answer;
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
    return ProtocolError("expected OPENED, got " + std::string(FrameTypeName(TypeOf(f))));
  }
  OpenedFrame o = std::get<OpenedFrame>(f);
  if (o.resume_raw_offset != o.resume_from_chunk * x.open.chunk_size ||
      (x.open.raw_size != kUnknownSize && o.resume_raw_offset > x.open.raw_size)) {
    return ProtocolError("resume point " + std::to_string(o.resume_from_chunk) + " does not fit this transfer");
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
    return ProtocolError("expected ACK, got " + std::string(FrameTypeName(TypeOf(f))));
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
    return ProtocolError("expected COMMITTED, got " + std::string(FrameTypeName(TypeOf(f))));
  }
}

compress::PipelineOptions Sender::Pipeline(WireCodec codec) const {
  compress::PipelineOptions p;
  p.algorithm = internal::ToAlgorithm(codec);
  p.level = opts_.level > 0 ? opts_.level : compress::DefaultLevel(p.algorithm);
  if (p.algorithm == compress::Algorithm::kGzip) p.level = std::clamp(p.level, 1, 12);
  if (p.algorithm == compress::Algorithm::kZstd) p.level = std::clamp(p.level, 1, 19);
  p.chunk_size = opts_.chunk_size;
  p.threads = opts_.threads;
  p.in_flight = opts_.in_flight;
  return p;
}

}  // namespace walferry::transport
