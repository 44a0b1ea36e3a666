// The receiver's write side: one transfer, OPEN .. CHUNK* .. COMMIT, into the
// store through store::Incoming (behind the content rule), with the per-cluster
// claims and temp-space accounting of transport/server.cc.
#include <algorithm>

#include "core/hash.h"
#include "transport/session_internal.h"

namespace walferry::transport {
namespace {

WireCodec CodecForStore(store::StoreFormat f) {
  switch (f) {
    case store::StoreFormat::kGzip: return WireCodec::kGzip;
    case store::StoreFormat::kZstd:
    case store::StoreFormat::kRaw: return WireCodec::kZstd;  // raw store: cheap zstd on the wire
  }
  return WireCodec::kZstd;
}

store::TransferSpec SpecOf(const std::string& cluster, const OpenFrame& open, const std::string& id) {
  store::TransferSpec spec{cluster, open.name, id,
                           open.raw_size == kUnknownSize ? -1 : static_cast<std::int64_t>(open.raw_size)};
  // The tar completeness rule (docs/archive-layout.md) from the sender's kind.
  spec.content = open.kind == WireKind::kTar   ? store::ContentCheck::kTar
                 : open.kind == WireKind::kAny ? store::ContentCheck::kNone
                                               : store::ContentCheck::kAuto;
  return spec;
}

}  // namespace

bool Server::Session::Transfer(const OpenFrame& open) {
  Figures figures{std::chrono::steady_clock::now()};
  std::string what = "name=" + open.name;
  auto kind = store::ClassifyName(open.name);
  if (!kind.ok()) {
    Fail(Error(ErrorCode::kRefused, kind.error().message()), what);
    return false;
  }
  if (open.kind == WireKind::kWal && *kind != store::EntryKind::kWal) {
    Fail(Error(ErrorCode::kRefused, "\"" + open.name + "\" is not a WAL file name"), what);
    return false;
  }
  std::string id = TransferIdHex(open.transfer_id);
  std::string key = cluster_ + "/" + open.name;
  if (Status c = s_.Claim(cluster_, key, id, &conn_); !c.ok()) {
    Fail(c.error(), what);
    return false;
  }
  chunk_size_ = open.chunk_size;  // what CHUNK frames of this transfer are admitted for
  struct EndChunks {
    std::uint32_t& v;
    ~EndChunks() { v = 0; }
  } end_chunks{chunk_size_};
  struct Unclaim {
    Server& s;
    std::string key;
    Conn* c;
    const std::string& cluster;
    std::uint64_t& reserved;
    ~Unclaim() {
      s.ReleaseTemp(cluster, reserved);
      reserved = 0;
      s.Release(key, c);
    }
  } unclaim{s_, key, &conn_, cluster_, reserved_};

  if (Status b = BeginIncoming(SpecOf(cluster_, open, id), open.chunk_size, what); !b.ok()) {
    Fail(b.error(), what);
    return false;
  }
  const std::uint64_t next = incoming_->next_chunk();
  figures.resumed = next;
  if (next > 0) {
    // The resumed part counts against the cap (its raw size: an upper bound).
    if (Status r = s_.ReserveTemp(cluster_, incoming_->next_raw_offset()); !r.ok()) return Drop(what, r.error());
    reserved_ += incoming_->next_raw_offset();
  }
  OpenedFrame opened{next, next * open.chunk_size, static_cast<WireStore>(s_.store_.format()),
                     CodecForStore(s_.store_.format()), AckInterval(open)};
  if (!writer_.Write(opened).ok()) return Keep(what, Error(ErrorCode::kNetwork, "peer went away"));
  return Receive(open, what, figures);
}

Status Server::Session::BeginIncoming(const store::TransferSpec& spec, std::uint32_t chunk_size,
                                      const std::string& what) {
  WF_ASSIGN(std::unique_ptr<store::Incoming> inc, s_.store_.Begin(spec));
  if (inc->next_raw_offset() != inc->next_chunk() * chunk_size) {
    // Saved state from a different chunking: start over.
    inc->Abandon();
    inc.reset();
    WF_ASSIGN(inc, s_.store_.Begin(spec));
  }
  // The content rule (a tar is stored only when complete) runs here, on the
  // raw bytes this receiver verified, whatever the store and the sender.
  std::string note;
  auto checked = store::WithContentCheck(std::move(inc), spec, &note);
  if (!note.empty()) s_.Log(Prefix() + " " + what + " " + note);
  if (!checked.ok() && checked.error().code() == ErrorCode::kUnsupported) {
    s_.Log(Prefix() + " " + what + " restarting from zero: " + checked.error().message());
    WF_ASSIGN(auto again, s_.store_.Begin(spec));
    checked = store::WithContentCheck(std::move(again), spec);
  }
  WF_ASSIGN(incoming_, std::move(checked));
  return Status::Ok();
}

std::uint32_t Server::Session::AckInterval(const OpenFrame& open) const {
  if (open.raw_size != kUnknownSize && open.raw_size <= 2 * s_.opts_.sync_bytes) {
    // A small file (a WAL segment): no intermediate syncs, Commit makes it durable.
    std::uint64_t chunks = (open.raw_size + open.chunk_size - 1) / open.chunk_size;
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(chunks, 1, 1024));
  }
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(s_.opts_.sync_bytes / open.chunk_size, 1, s_.opts_.sync_chunks));
}

bool Server::Session::Receive(const OpenFrame& open, const std::string& what, Figures& figures) {
  const std::uint32_t ack_every = AckInterval(open);
  for (;;) {
    auto f = ReadFrame();
    if (!f.ok()) return Keep(what, f.error());
    if (TypeOf(*f) == FrameType::kCommit) return Commit(open, std::get<CommitFrame>(*f), what, figures);
    if (TypeOf(*f) != FrameType::kChunk) {
      return Keep(what, Error(ErrorCode::kProtocol, "unexpected " + std::string(FrameTypeName(TypeOf(*f))) +
                                                        " during a transfer"));
    }
    const auto& c = std::get<ChunkFrame>(*f);
    // Temp space this chunk takes in .incoming: its frame as received, or
    // its raw bytes in a raw store.
    std::uint64_t temp = s_.store_.format() == store::StoreFormat::kRaw ? c.raw_len : c.wire_len;
    if (Status r = s_.ReserveTemp(cluster_, temp); !r.ok()) return Drop(what, r.error());
    reserved_ += temp;
    Status st = Chunk(open, c);
    if (!st.ok()) return Keep(what, st.error());
    figures.wire += c.wire_len;
    ++figures.received;
    // The chunk that completes a known size is made durable by COMMIT, not by an ACK.
    bool last = open.raw_size != kUnknownSize && c.raw_offset + c.raw_len == open.raw_size;
    if (figures.received % ack_every == 0 && !last) {
      auto durable = incoming_->Sync();
      if (!durable.ok()) return Drop(what, durable.error());
      if (!writer_.Write(AckFrame{*durable}).ok()) return Keep(what, Error(ErrorCode::kNetwork, "peer went away"));
    }
  }
}

bool Server::Session::Commit(const OpenFrame& open, const CommitFrame& c, const std::string& what,
                             const Figures& figures) {
  if (open.raw_size != kUnknownSize && c.raw_size != open.raw_size) {
    return Drop(what, Error(ErrorCode::kCorrupt, "size at COMMIT (" + std::to_string(c.raw_size) +
                                                     ") differs from OPEN (" + std::to_string(open.raw_size) + ")"));
  }
  auto outcome = incoming_->Commit(c.raw_size, c.raw_hash);
  incoming_.reset();  // Commit removed temp data either way
  if (!outcome.ok()) {
    Fail(outcome.error(), what);
    return false;
  }
  bool identical = *outcome == store::CommitOutcome::kAlreadyIdentical;
  if (!writer_.Write(CommittedFrame{identical ? WireOutcome::kIdentical : WireOutcome::kPlaced}).ok()) {
    s_.Log(Prefix() + " " + what + " durable, but the sender went away before COMMITTED");
    return false;
  }
  s_.transfers_done_.fetch_add(1);
  s_.Log(Prefix() + " " + what + " " + (identical ? "identical" : "placed") + " bytes=" + std::to_string(c.raw_size) +
         " wire=" + std::to_string(figures.wire) + " chunks=" + std::to_string(figures.received) +
         (figures.resumed ? " resumed_from=" + std::to_string(figures.resumed) : "") +
         " ms=" + internal::MsSince(figures.t0));
  return true;
}

Status Server::Session::Chunk(const OpenFrame& open, const ChunkFrame& c) {
  if (c.index != incoming_->next_chunk() || c.raw_offset != incoming_->next_raw_offset()) {
    return Error(ErrorCode::kProtocol, "chunk " + std::to_string(c.index) + " at offset " +
                                           std::to_string(c.raw_offset) + " out of order (expected " +
                                           std::to_string(incoming_->next_chunk()) + ")");
  }
  if (c.raw_len > open.chunk_size) {
    return Error(ErrorCode::kProtocol, "chunk " + std::to_string(c.index) + " larger than the chunk size");
  }
  if (open.raw_size != kUnknownSize && c.raw_offset + c.raw_len > open.raw_size) {
    return Error(ErrorCode::kProtocol, "chunk " + std::to_string(c.index) + " beyond the announced size");
  }
  std::span<const std::byte> raw = c.payload;
  if (c.codec != WireCodec::kRaw) {
    WF_ASSIGN(raw, Decode(c));
  }
  if (Xxh3_64(raw) != c.raw_xxh3) {
    return Error(ErrorCode::kCorrupt, "chunk " + std::to_string(c.index) + " checksum mismatch");
  }
  return incoming_->Append(c.index, raw, static_cast<compress::Algorithm>(c.codec), c.payload);
}

Result<std::span<const std::byte>> Server::Session::Decode(const ChunkFrame& c) {
  // raw_len is bounded by OPEN's chunk size (<= 16 MiB); the buffer only grows.
  auto& raw_buf = bufs_->raw;
  if (raw_buf.size() < c.raw_len) {
    raw_buf.reserve(c.raw_len);  // exactly: within what Admit leased
    raw_buf.resize(c.raw_len);
  }
  auto dst = std::span(raw_buf.data(), c.raw_len);
  Status st = decoders_.Decompress(c, dst);
  if (!st.ok()) {
    return Error(ErrorCode::kCorrupt, "chunk " + std::to_string(c.index) + " does not decompress: " +
                                          st.error().message());
  }
  return std::span<const std::byte>(dst);
}

}  // namespace walferry::transport
