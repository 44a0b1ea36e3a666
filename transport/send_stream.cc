// Sender::SendStream: a pipe, read once; the chunks the receiver has not made
// durable stay in the window and are resent after a reconnect (Recover).
#include "transport/sender_internal.h"

namespace walferry::transport {

using internal::HashingSource;

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

Status Sender::StreamChunk(Xfer& x, const ChunkFrame& f, int* attempt) {
  Window& window = *x.window;
  // Make room (wait for ACKs) before copying into the window.
  while (window.full() && conn_ && x.acks_expected > x.acks_read) {
    Status a = ReadAck(x);
    if (!a.ok()) {
      if (!Retryable(a.error())) return a;
      WF_TRY(Recover(x, attempt));
    }
  }
  if (window.full()) return Error(ErrorCode::kInternal, "resend window full without pending ACKs");
  WF_TRY(window.Add(f));
  ++x.next_index;
  Status s = conn_ ? SendChunk(x, window.entries().back().head) : Error(ErrorCode::kNetwork, "not connected");
  if (!s.ok()) {
    if (!Retryable(s.error())) return s;
    if (opts_.note) opts_.note("retrying after: " + s.error().message());
    WF_TRY(Recover(x, attempt));  // resends everything not durable, including this chunk
  }
  return Status::Ok();
}

Result<SendResult> Sender::CommitStream(Xfer& x, std::uint64_t size, const Hash128& hash, int* attempt) {
  for (;;) {
    auto r = Commit(x, size, hash);
    if (r.ok()) {
      x.result.outcome = *r;
      x.result.raw_bytes = size;
      return x.result;
    }
    if (!Retryable(r.error())) {
      Drop();
      return r.error();
    }
    if (opts_.note) opts_.note("retrying after: " + r.error().message());
    Status rs = Recover(x, attempt);
    if (!rs.ok()) {
      Drop();
      return rs.error();
    }
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
  if (o.resume_from_chunk != 0) return internal::ProtocolError("a new transfer was offered a resume point");
  // Enough room for two ACK intervals plus the chunks in the pipeline's hands.
  std::size_t capacity = 2 * std::size_t{x.ack_every} + 2;
  std::size_t buf = opts_.chunk_size;  // WireChunk never sends more than the raw chunk
  Window window(capacity, buf);
  x.window = &window;
  store::TarCheck tar(internal::SenderCheck(opts_.kind));
  HashingSource hs(src, &tar);
  auto popts = Pipeline(o.codec);
  Status st = compress::CompressChunks(hs, popts, [&](const compress::Chunk& c) -> Status {
    if (c.index != x.next_index) {
      return Error(ErrorCode::kInternal, "pipeline emitted chunk " + std::to_string(c.index) +
                                             ", expected " + std::to_string(x.next_index));
    }
    WF_TRY(StreamChunk(x, internal::WireChunk(c, popts.algorithm), &attempt));
    if (opts_.progress) opts_.progress(c.raw_offset + c.raw_len);
    return Status::Ok();
  });
  if (!st.ok()) {
    Drop();
    return st.error();
  }
  if (Status t = internal::CheckBeforeCommit(tar, name); !t.ok()) {
    Drop();
    return t.error();
  }
  return CommitStream(x, hs.total(), hs.Digest(), &attempt);
}

}  // namespace walferry::transport
