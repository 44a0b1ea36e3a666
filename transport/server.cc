#include "transport/server.h"

#include <cstdio>
#include <vector>

#include "compress/codec.h"
#include "core/hash.h"
#include "core/names.h"
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

namespace {

WireCodec CodecForStore(store::StoreFormat f) {
  switch (f) {
    case store::StoreFormat::kGzip: return WireCodec::kGzip;
    case store::StoreFormat::kZstd:
    case store::StoreFormat::kRaw: return WireCodec::kZstd;  // raw store: cheap zstd on the wire
  }
  return WireCodec::kZstd;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Seconds(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  return std::to_string(t.count()) + " ms";
}

std::string Ms(std::chrono::steady_clock::time_point t0) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return std::to_string(ms.count());
}

}  // namespace

// One connection's protocol state machine.
class Server::Session final : public FrameAdmission {
 public:
  Session(Server& server, Conn& conn, Watch* watch)
      : s_(server), conn_(conn), watch_(watch), bufs_(server.TakeBuffers()), reader_(conn, bufs_->frame, this),
        writer_(conn) {}
  ~Session() { s_.GiveBuffers(std::move(bufs_)); }

  void Run() {
    conn_.SetTimeout(s_.opts_.io_timeout);
    Status st = Hello();
    if (!st.ok()) {
      Fail(st.error(), "");
      return;
    }
    if (watch_) watch_->in_hello.store(false);
    for (;;) {
      auto f = ReadFrame();
      if (!f.ok()) {
        if (f.error().code() != ErrorCode::kNetwork || busy_) Fail(f.error(), "");
        return;  // EOF between transfers is the normal end
      }
      if (TypeOf(*f) == FrameType::kFetch) {
        if (!Fetch(std::get<FetchFrame>(*f))) return;
        continue;
      }
      if (TypeOf(*f) == FrameType::kHave) {
        if (!Have(std::get<HaveFrame>(*f))) return;
        continue;
      }
      if (TypeOf(*f) != FrameType::kOpen) {
        Fail(Error(ErrorCode::kProtocol, "expected OPEN, got " + std::string(FrameTypeName(TypeOf(*f)))), "");
        return;
      }
      if (!Transfer(std::get<OpenFrame>(*f))) return;
    }
  }

 private:
  // A frame body is admitted against the server's buffer budget before it
  // is allocated (transport/buffer_budget.h). Within what this connection
  // already holds nothing waits; otherwise it frees its own buffers first
  // and asks for the whole need at once (no connection holds part of what
  // it waits for), for at most buffer_wait, while the idle clock stops.
  Status Admit(const FrameHeader& h) override {
    std::uint32_t chunk = 0;
    if (h.type == FrameType::kChunk && chunk_size_ > 0) {
      chunk = chunk_size_;
      if (h.body_len > kChunkFixedSize + compress::MaxCompressedSize(chunk)) {
        return Error(ErrorCode::kProtocol, "CHUNK body length " + std::to_string(h.body_len) +
                                               " exceeds what a chunk of " + std::to_string(chunk) + " bytes can take");
      }
    }
    auto& b = *bufs_;
    // The store's compressor (archive::Recompressor) lives with the transfer.
    const bool recompress = s_.store_.format() != store::StoreFormat::kRaw;
    const std::uint64_t store_need = FrameBufferNeed(0, chunk, recompress) - FrameBufferNeed(0, chunk, false);
    std::uint64_t grown = std::max<std::uint64_t>(b.frame.capacity(), kHeaderSize + h.body_len) +
                          std::max<std::uint64_t>(b.raw.capacity(), chunk) + store_need;
    Status st = Lease(grown, FrameBufferNeed(h.body_len, chunk, recompress));
    if (watch_) {
      auto t = watch_->in_hello.load() ? s_.opts_.handshake_timeout : s_.opts_.idle_timeout;
      watch_->deadline_ms.store(NowMs() + t.count());  // the body is the peer's to deliver again
    }
    if (!st.ok()) busy_ = st.error().code() == ErrorCode::kNetwork;
    return st;
  }

  // Makes this connection's share of the budget cover `grown` bytes: nothing
  // to do when it already does; otherwise frees its own buffers and asks for
  // `need` at once (waiting at most buffer_wait, the idle clock stopped).
  Status Lease(std::uint64_t grown, std::uint64_t need) {
    auto& b = *bufs_;
    if (grown <= b.leased) return Status::Ok();
    b.frame = {};
    b.raw = {};
    s_.budget_->Release(b.leased);
    b.leased = 0;
    need = std::max(kMinLease, need);
    if (watch_) watch_->deadline_ms.store(0);
    WF_TRY(s_.budget_->Acquire(
        need, std::chrono::steady_clock::now() + s_.opts_.buffer_wait, [this] { return s_.DropSpareBuffers(); },
        [this] { return s_.stopping_.load(); }));
    b.leased = need;
    return Status::Ok();
  }
  static constexpr std::uint64_t kMinLease = 64 * 1024;  // control frames never come back for more

  // FETCH and HAVE read a stored entry: the read's buffers (store::Store::
  // ReadMemory) and, for FETCH, the chunk being sent, its compressed form and
  // the compressor are charged to the budget as a frame is, for the time of
  // the read (ShrinkLease gives them back). kNetwork "receiver busy" after
  // buffer_wait; kRefused when the read needs more than the whole budget.
  Status LeaseRead(const std::string& name, std::uint64_t bytes) {
    auto& b = *bufs_;
    const std::uint64_t own = b.frame.capacity() + b.raw.capacity();
    Status st = Lease(own + bytes, bytes);
    if (st.ok() || st.error().code() != ErrorCode::kRefused) return st;
    return Error(ErrorCode::kRefused, "reading " + name + " needs " + std::to_string((bytes + (1u << 20) - 1) >> 20) +
                                          " MiB of buffer, more than the receiver's whole budget (serve --max-buffer-mb " +
                                          std::to_string(s_.budget_->capacity() >> 20) + ")");
  }
  // After a read: keeps only what this connection's own buffers hold.
  void ShrinkLease() {
    auto& b = *bufs_;
    const std::uint64_t keep = std::max(kMinLease, b.frame.capacity() + b.raw.capacity());
    if (b.leased <= keep) return;
    s_.budget_->Release(b.leased - keep);
    b.leased = keep;
  }

  // Reads the peer's next frame under the watchdog's deadline (HELLO: the
  // handshake timeout; later: the idle timeout). The clock runs only while
  // waiting for the peer, never while the receiver itself works.
  Result<Frame> ReadFrame() {
    if (watch_) {
      auto t = watch_->in_hello.load() ? s_.opts_.handshake_timeout : s_.opts_.idle_timeout;
      watch_->deadline_ms.store(NowMs() + t.count());
    }
    auto f = reader_.Read();
    if (watch_) watch_->deadline_ms.store(0);
    return f;
  }

  Status Hello() {
    WF_ASSIGN(Frame f, ReadFrame());
    if (TypeOf(f) != FrameType::kHello) {
      return Error(ErrorCode::kProtocol, "expected HELLO, got " + std::string(FrameTypeName(TypeOf(f))));
    }
    const auto& h = std::get<HelloFrame>(f);
    if (h.version != kProtocolVersion) {
      return Error(ErrorCode::kUnsupported, "protocol version " + std::to_string(h.version) +
                                                " not supported (this receiver speaks " +
                                                std::to_string(kProtocolVersion) + "); upgrade walferry");
    }
    cluster_ = conn_.peer_cluster();
    if (cluster_.empty()) {
      if (!s_.opts_.insecure) return Error(ErrorCode::kAuth, "connection has no client certificate");
      cluster_ = h.cluster.empty() ? "main" : h.cluster;
    }
    if (Status v = ValidateClusterName(cluster_); !v.ok()) {
      return Error(ErrorCode::kRefused, v.error().message());
    }
    return writer_.Write(HelloFrame{kProtocolVersion, kFeatureHave, cluster_});
  }

  // Sends ERROR, logs, and lingers briefly reading what the peer still sends so
  // that it can read the ERROR instead of a connection reset.
  void Fail(const Error& e, const std::string& what) {
    s_.Log("serve: " + conn_.peer_address() + (cluster_.empty() ? "" : " cluster=" + cluster_) +
           (what.empty() ? "" : " " + what) + " error=" + std::string(ErrorCodeName(e.code())) + ": " +
           e.message());
    if (e.code() == ErrorCode::kNetwork && !busy_) return;  // busy_: "receiver busy" is told
    if (!writer_.Write(ErrorFrame{e.code(), e.message()}).ok()) return;
    conn_.SetTimeout(std::chrono::milliseconds(2000));
    std::vector<std::byte> sink(64 * 1024);
    std::size_t drained = 0;
    // Bounded in bytes and in time: a peer that dribbles forever is not read forever.
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
    while (drained < (64u << 20) && std::chrono::steady_clock::now() < end) {
      auto n = conn_.ReadSome(sink);
      if (!n.ok() || *n == 0) break;
      drained += *n;
    }
  }

  store::Incoming* incoming() { return incoming_.get(); }

  // HAVE: answers whether this cluster stores NAME with exactly that raw size
  // and XXH3-128 (reading the stored copy in full). Errors while looking are
  // answered kAbsent: the sender then ships the file and Commit decides.
  bool Have(const HaveFrame& have) {
    auto t0 = std::chrono::steady_clock::now();
    WireHave answer = WireHave::kAbsent;
    if (store::ClassifyName(have.name).ok()) {
      auto entry = s_.store_.Find(cluster_, have.name);
      // No memory within buffer_wait: answered kAbsent (the frames of the
      // transfer that follows are admitted one by one).
      if (entry.ok() && LeaseRead(have.name, s_.store_.ReadMemory(*entry)).ok()) {
        class HashSink final : public ByteSink {
         public:
          Status Write(std::span<const std::byte> d) override {
            hash.Update(d);
            size += d.size();
            return Status::Ok();
          }
          Status Finish() override { return Status::Ok(); }
          Xxh3Stream hash;
          std::uint64_t size = 0;
        } sink;
        // Through the archive (disk or object store), verified as any read.
        if (s_.store_.Read(*entry, sink).ok()) {
          answer = sink.size == have.raw_size && sink.hash.Digest() == have.raw_hash ? WireHave::kIdentical
                                                                                     : WireHave::kDifferent;
        }
        ShrinkLease();
      }
    }
    if (!writer_.Write(HaveReplyFrame{answer}).ok()) return false;
    if (answer != WireHave::kAbsent) {
      s_.Log("serve: " + conn_.peer_address() + " cluster=" + cluster_ + " have name=" + have.name +
             (answer == WireHave::kIdentical ? " identical" : " different") + " ms=" + Ms(t0));
    }
    return true;
  }

  // FETCH (restore side): streams a stored entry of this connection's cluster
  // as OPEN, CHUNKs (zstd level 1, XXH3-64 of each raw chunk) and COMMIT
  // (size, XXH3-128). A missing entry gets ERROR kNotFound without a log line
  // (PostgreSQL polls for segments that do not exist yet). Returns false when
  // the connection must close.
  bool Fetch(const FetchFrame& fetch) {
    auto t0 = std::chrono::steady_clock::now();
    std::string what = "fetch name=" + fetch.name;
    auto kind = store::ClassifyName(fetch.name);
    if (!kind.ok()) {
      Fail(Error(ErrorCode::kRefused, kind.error().message()), what);
      return false;
    }
    if (fetch.offset != 0) {
      Fail(Error(ErrorCode::kUnsupported, "FETCH from an offset is not supported"), what);
      return false;
    }
    auto entry = s_.store_.Find(cluster_, fetch.name);
    if (!entry.ok()) {
      if (entry.error().code() == ErrorCode::kNotFound) {
        (void)writer_.Write(ErrorFrame{ErrorCode::kNotFound, fetch.name + " is not in the archive"});
        return false;
      }
      Fail(entry.error(), what);
      return false;
    }
    constexpr std::uint32_t kFetchChunk = 1u << 20;
    const std::uint64_t need = s_.store_.ReadMemory(*entry) + kHeaderSize + kFetchChunk +
                               compress::MaxCompressedSize(kFetchChunk) + kRecompressContext;
    if (Status lease = LeaseRead(fetch.name, need); !lease.ok()) {
      busy_ = lease.error().code() == ErrorCode::kNetwork;
      Fail(lease.error(), what);
      return false;
    }
    struct Shrink {
      Session& s;
      ~Shrink() { s.ShrinkLease(); }
    } shrink{*this};
    OpenFrame open;
    open.raw_size = kUnknownSize;
    open.chunk_size = kFetchChunk;
    open.kind = *kind == store::EntryKind::kWal ? WireKind::kWal : WireKind::kFile;
    open.codec = WireCodec::kZstd;
    open.name = fetch.name;
    if (!writer_.Write(open).ok()) return false;
    auto codec = compress::MakeCodec(compress::Algorithm::kZstd, 1);
    if (!codec.ok()) {
      Fail(codec.error(), what);
      return false;
    }
    // Cuts the entry's raw content into chunks and sends each as it fills.
    class ChunkSink final : public ByteSink {
     public:
      ChunkSink(FrameWriter& w, compress::Codec& c) : w_(w), codec_(c) { raw_.reserve(kFetchChunk); }
      Status Write(std::span<const std::byte> data) override {
        while (!data.empty()) {
          std::size_t take = std::min<std::size_t>(kFetchChunk - raw_.size(), data.size());
          raw_.insert(raw_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
          data = data.subspan(take);
          if (raw_.size() == kFetchChunk) WF_TRY(Flush());
        }
        return Status::Ok();
      }
      Status Finish() override { return raw_.empty() ? Status::Ok() : Flush(); }
      std::uint64_t size() const { return offset_; }
      Hash128 Digest() const { return hash_.Digest(); }

     private:
      Status Flush() {
        wire_.resize(codec_.Bound(raw_.size()));
        WF_ASSIGN(std::size_t n, codec_.Compress(raw_, wire_));
        ChunkFrame c;
        c.index = index_++;
        c.raw_offset = offset_;
        c.raw_len = static_cast<std::uint32_t>(raw_.size());
        // Incompressible data goes raw, as a sender's does.
        const bool raw = n >= raw_.size();
        c.wire_len = static_cast<std::uint32_t>(raw ? raw_.size() : n);
        c.codec = raw ? WireCodec::kRaw : WireCodec::kZstd;
        c.raw_xxh3 = Xxh3_64(raw_);
        c.payload = raw ? std::span<const std::byte>(raw_) : std::span<const std::byte>(wire_.data(), n);
        hash_.Update(raw_);
        offset_ += raw_.size();
        Status st = w_.WriteChunk(c);
        raw_.clear();
        return st;
      }
      FrameWriter& w_;
      compress::Codec& codec_;
      std::vector<std::byte> raw_, wire_;
      std::uint64_t index_ = 0, offset_ = 0;
      Xxh3Stream hash_;
    } sink(writer_, **codec);
    Status st = s_.store_.Read(*entry, sink);
    if (!st.ok()) {
      Fail(st.error(), what);
      return false;
    }
    if (!writer_.Write(CommitFrame{sink.size(), sink.Digest()}).ok()) return false;
    s_.Log("serve: " + conn_.peer_address() + " cluster=" + cluster_ + " " + what +
           " sent bytes=" + std::to_string(sink.size()) + " ms=" + Ms(t0));
    return true;
  }

  // Returns false when the connection must close.
  bool Transfer(const OpenFrame& open) {
    auto t0 = std::chrono::steady_clock::now();
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

    store::TransferSpec spec{cluster_, open.name, id,
                               open.raw_size == kUnknownSize ? -1 : static_cast<std::int64_t>(open.raw_size)};
    // The tar completeness rule (docs/archive-layout.md) from the sender's kind.
    spec.content = open.kind == WireKind::kTar   ? store::ContentCheck::kTar
                   : open.kind == WireKind::kAny ? store::ContentCheck::kNone
                                                 : store::ContentCheck::kAuto;
    auto inc = s_.store_.Begin(spec);
    if (!inc.ok()) {
      Fail(inc.error(), what);
      return false;
    }
    incoming_ = std::move(*inc);
    std::uint64_t next = incoming_->next_chunk();
    if (incoming_->next_raw_offset() != next * open.chunk_size) {
      // Saved state from a different chunking: start over.
      incoming_->Abandon();
      incoming_.reset();
      auto again = s_.store_.Begin(spec);
      if (!again.ok()) {
        Fail(again.error(), what);
        return false;
      }
      incoming_ = std::move(*again);
      next = incoming_->next_chunk();
    }
    // The content rule (a tar is stored only when complete) runs here, on the
    // raw bytes this receiver verified, whatever the store and the sender.
    std::string note;
    auto checked = store::WithContentCheck(std::move(incoming_), spec, &note);
    if (!note.empty()) s_.Log("serve: " + conn_.peer_address() + " cluster=" + cluster_ + " " + what + " " + note);
    if (!checked.ok() && checked.error().code() == ErrorCode::kUnsupported) {
      s_.Log("serve: " + conn_.peer_address() + " cluster=" + cluster_ + " " + what +
             " restarting from zero: " + checked.error().message());
      auto again = s_.store_.Begin(spec);
      if (!again.ok()) {
        Fail(again.error(), what);
        return false;
      }
      checked = store::WithContentCheck(std::move(*again), spec);
    }
    if (!checked.ok()) {
      Fail(checked.error(), what);
      return false;
    }
    incoming_ = std::move(*checked);
    next = incoming_->next_chunk();
    const std::uint64_t resumed = next;
    if (next > 0) {
      // The resumed part counts against the cap (its raw size: an upper bound).
      if (Status r = s_.ReserveTemp(cluster_, incoming_->next_raw_offset()); !r.ok()) return Drop(what, r.error());
      reserved_ += incoming_->next_raw_offset();
    }
    std::uint32_t ack_every = static_cast<std::uint32_t>(
        std::clamp<std::uint64_t>(s_.opts_.sync_bytes / open.chunk_size, 1, s_.opts_.sync_chunks));
    if (open.raw_size != kUnknownSize && open.raw_size <= 2 * s_.opts_.sync_bytes) {
      // A small file (a WAL segment): no intermediate syncs, Commit makes it durable.
      std::uint64_t chunks = (open.raw_size + open.chunk_size - 1) / open.chunk_size;
      ack_every = static_cast<std::uint32_t>(std::clamp<std::uint64_t>(chunks, 1, 1024));
    }
    OpenedFrame opened{next, next * open.chunk_size, static_cast<WireStore>(s_.store_.format()),
                       CodecForStore(s_.store_.format()), ack_every};
    if (!writer_.Write(opened).ok()) return Keep(what, Error(ErrorCode::kNetwork, "peer went away"));

    std::uint64_t received = 0, wire = 0;
    for (;;) {
      auto f = ReadFrame();
      if (!f.ok()) return Keep(what, f.error());
      if (TypeOf(*f) == FrameType::kChunk) {
        const auto& c = std::get<ChunkFrame>(*f);
        // Temp space this chunk takes in .incoming: its frame as received, or
        // its raw bytes in a raw store.
        std::uint64_t temp = s_.store_.format() == store::StoreFormat::kRaw ? c.raw_len : c.wire_len;
        if (Status r = s_.ReserveTemp(cluster_, temp); !r.ok()) return Drop(what, r.error());
        reserved_ += temp;
        Status st = Chunk(open, c);
        if (!st.ok()) return Keep(what, st.error());
        wire += c.wire_len;
        ++received;
        // The chunk that completes a known size is made durable by COMMIT, not by an ACK.
        bool last = open.raw_size != kUnknownSize && c.raw_offset + c.raw_len == open.raw_size;
        if (received % ack_every == 0 && !last) {
          auto durable = incoming_->Sync();
          if (!durable.ok()) return Drop(what, durable.error());
          if (!writer_.Write(AckFrame{*durable}).ok()) return Keep(what, Error(ErrorCode::kNetwork, "peer went away"));
        }
        continue;
      }
      if (TypeOf(*f) == FrameType::kCommit) {
        const auto& c = std::get<CommitFrame>(*f);
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
          s_.Log("serve: " + conn_.peer_address() + " cluster=" + cluster_ + " " + what +
                 " durable, but the sender went away before COMMITTED");
          return false;
        }
        s_.transfers_done_.fetch_add(1);
        s_.Log("serve: " + conn_.peer_address() + " cluster=" + cluster_ + " " + what + " " +
               (identical ? "identical" : "placed") + " bytes=" + std::to_string(c.raw_size) +
               " wire=" + std::to_string(wire) + " chunks=" + std::to_string(received) +
               (resumed ? " resumed_from=" + std::to_string(resumed) : "") + " ms=" + Ms(t0));
        return true;
      }
      return Keep(what, Error(ErrorCode::kProtocol, "unexpected " + std::string(FrameTypeName(TypeOf(*f))) +
                                                        " during a transfer"));
    }
  }

  Status Chunk(const OpenFrame& open, const ChunkFrame& c) {
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
    std::span<const std::byte> raw;
    if (c.codec == WireCodec::kRaw) {
      raw = c.payload;
    } else {
      auto& dec = decoders_[static_cast<int>(c.codec)];
      if (!dec) {
        auto d = compress::MakeDecoder(static_cast<compress::Algorithm>(c.codec));
        if (!d.ok()) return d.error();
        dec = std::move(*d);
      }
      // raw_len is bounded by OPEN's chunk size (<= 16 MiB); the buffer only grows.
      auto& raw_buf = bufs_->raw;
      if (raw_buf.size() < c.raw_len) {
        raw_buf.reserve(c.raw_len);  // exactly: within what Admit leased
        raw_buf.resize(c.raw_len);
      }
      auto dst = std::span(raw_buf.data(), c.raw_len);
      Status st = dec->DecompressChunk(c.payload, dst);
      if (!st.ok()) {
        return Error(ErrorCode::kCorrupt, "chunk " + std::to_string(c.index) + " does not decompress: " +
                                              st.error().message());
      }
      raw = dst;
    }
    if (Xxh3_64(raw) != c.raw_xxh3) {
      return Error(ErrorCode::kCorrupt, "chunk " + std::to_string(c.index) + " checksum mismatch");
    }
    return incoming_->Append(c.index, raw, static_cast<compress::Algorithm>(c.codec), c.payload);
  }

  // Error during a transfer: keep what is durable for a resume (network loss,
  // damaged chunk, protocol slip) or drop it (archive refused it, disk full).
  bool Keep(const std::string& what, const Error& e) {
    if (incoming_) {
      bool keep = e.code() == ErrorCode::kNetwork || e.code() == ErrorCode::kCorrupt ||
                  e.code() == ErrorCode::kProtocol || e.code() == ErrorCode::kInternal;
      if (keep) {
        (void)incoming_->Sync();
      } else {
        incoming_->Abandon();
      }
      incoming_.reset();
    }
    Fail(e, what);
    return false;
  }
  bool Drop(const std::string& what, const Error& e) {
    if (incoming_) {
      incoming_->Abandon();
      incoming_.reset();
    }
    Fail(e, what);
    return false;
  }

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
  std::unique_ptr<compress::Decoder> decoders_[3];
};

std::unique_ptr<Server::Buffers> Server::TakeBuffers() {
  std::lock_guard lk(mu_);
  if (spare_buffers_.empty()) return std::make_unique<Buffers>();
  auto b = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return b;
}

void Server::GiveBuffers(std::unique_ptr<Buffers> b) {
  {
    std::lock_guard lk(mu_);
    // Kept (with their share of the budget) unless someone waits for memory.
    if (spare_buffers_.size() < 8 && budget_->waiters() == 0) {
      spare_buffers_.push_back(std::move(b));
      return;
    }
  }
  std::uint64_t leased = b->leased;
  b.reset();
  budget_->Release(leased);
}

bool Server::DropSpareBuffers() {
  std::unique_ptr<Buffers> b;
  {
    std::lock_guard lk(mu_);
    if (spare_buffers_.empty()) return false;
    b = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
  }
  std::uint64_t leased = b->leased;
  b.reset();
  budget_->Release(leased);
  return true;
}

Server::Server(store::Store& store, ServerOptions options)
    : store_(store),
      opts_(std::move(options)),
      budget_(std::make_unique<BufferBudget>(opts_.max_buffer_bytes > 0 ? opts_.max_buffer_bytes
                                                                        : DefaultBufferBudget(opts_.max_connections))) {
  // Each FETCH/HAVE decodes on its own connection's thread: the connections
  // are the parallelism, and a read's memory (charged to the budget) stays small.
  store_.SetReadThreads(1);
}

Server::~Server() { Stop(); }

void Server::Log(const std::string& line) {
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

Status Server::Claim(const std::string& cluster, const std::string& key, const std::string& id, Conn* conn) {
  std::unique_lock lk(mu_);
  auto it = claimed_.find(key);
  if (it == claimed_.end() && opts_.max_transfers_per_cluster > 0) {
    const std::string prefix = cluster + "/";
    std::size_t n = 0;
    for (auto c = claimed_.lower_bound(prefix); c != claimed_.end() && c->first.starts_with(prefix); ++c) ++n;
    if (n >= opts_.max_transfers_per_cluster) {
      return Error(ErrorCode::kRefused, "cluster " + cluster + " already has " + std::to_string(n) +
                                            " transfers in progress (serve --max-transfers-per-cluster " +
                                            std::to_string(opts_.max_transfers_per_cluster) + "); try again later");
    }
  }
  if (it != claimed_.end()) {
    if (it->second.id != id) {
      return Error(ErrorCode::kRefused, "another transfer of this name is in progress; try again later");
    }
    // The same sender reconnected while its old connection lingers: end the old one.
    it->second.conn->Shutdown();
    if (!cv_.wait_for(lk, std::chrono::seconds(30), [&] { return claimed_.count(key) == 0; })) {
      return Error(ErrorCode::kRefused, "previous connection for this transfer is still busy; try again");
    }
  }
  claimed_[key] = Claimed{id, conn};
  return Status::Ok();
}

void Server::Release(const std::string& key, Conn* conn) {
  std::lock_guard lk(mu_);
  auto it = claimed_.find(key);
  if (it != claimed_.end() && it->second.conn == conn) claimed_.erase(it);
  cv_.notify_all();
}

Status Server::ReserveTemp(const std::string& cluster, std::uint64_t bytes) {
  std::lock_guard lk(mu_);
  std::uint64_t& used = temp_bytes_[cluster];
  std::uint64_t cap = opts_.max_incoming_bytes_per_cluster;
  if (cap > 0 && used + bytes > cap) {
    return Error(ErrorCode::kNoSpace, "temp space of cluster " + cluster + " in .incoming would exceed its cap of " +
                                          std::to_string(cap >> 20) + " MiB (serve --max-incoming-mib); transfer dropped");
  }
  used += bytes;
  return Status::Ok();
}

void Server::ReleaseTemp(const std::string& cluster, std::uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lk(mu_);
  auto it = temp_bytes_.find(cluster);
  if (it == temp_bytes_.end()) return;
  it->second -= std::min(it->second, bytes);
  if (it->second == 0) temp_bytes_.erase(it);
}

void Server::ServeConnection(Conn& conn) { ServeWatched(conn, nullptr); }

void Server::ServeWatched(Conn& conn, Watch* watch) {
  Session s(*this, conn, watch);
  s.Run();
}

void Server::WatchDeadlines() {
  std::unique_lock lk(mu_);
  while (!stopping_.load()) {
    cv_.wait_for(lk, std::chrono::milliseconds(100));
    std::int64_t now = NowMs();
    for (auto& a : conns_) {
      std::int64_t d = a->watch.deadline_ms.load();
      if (d == 0 || now < d || a->watch.fired.exchange(true)) continue;
      bool hello = a->watch.in_hello.load();
      Log("serve: dropped " + a->conn->peer_address() + ": " +
          (hello ? "no HELLO within " + Seconds(opts_.handshake_timeout) + " (serve --handshake-timeout)"
                 : "no frame for " + Seconds(opts_.idle_timeout) + " (serve --idle-timeout)"));
      a->conn->Shutdown();
    }
  }
}

Status Server::Run(Listener& listener) {
  {
    std::lock_guard lk(mu_);
    listener_ = &listener;
  }
  auto reap = [&](bool all) {
    std::list<std::shared_ptr<Active>> finished;
    {
      std::lock_guard lk(mu_);
      for (auto* list : {&conns_, &refusing_}) {
        for (auto it = list->begin(); it != list->end();) {
          if (all || (*it)->done.load()) {
            finished.push_back(*it);
            it = list->erase(it);
          } else {
            ++it;
          }
        }
      }
    }
    for (auto& a : finished) {
      if (a->thread.joinable()) a->thread.join();
    }
  };
  std::thread watchdog([this] { WatchDeadlines(); });
  while (!stopping_.load()) {
    auto c = listener.Accept();
    reap(false);
    if (!c.ok()) {
      if (stopping_.load()) break;
      Log("serve: refused a connection: " + c.error().message());
      continue;
    }
    auto active = std::make_shared<Active>();
    active->conn = std::move(*c);
    // No lock is held across network I/O: a refused client that does not read
    // gets its ERROR from a thread of its own, so it delays neither the accept
    // loop nor any session's start or end (they take mu_).
    bool refuse = false, drop = false;
    {
      std::lock_guard lk(mu_);
      if (stopping_.load()) break;
      if (conns_.size() >= opts_.max_connections) {
        refuse = true;
        drop = refusing_.size() >= kMaxRefusing;
        if (!drop) refusing_.push_back(active);
      } else {
        conns_.push_back(active);
      }
    }
    if (refuse) {
      Log("serve: too many connections, refusing " + active->conn->peer_address());
      if (drop) {
        active->conn->Shutdown();  // too many refusals in flight: close without a word
        continue;
      }
      active->thread = std::thread([active] {
        active->conn->SetTimeout(std::chrono::milliseconds(1000));
        FrameWriter w(*active->conn);
        (void)w.Write(ErrorFrame{ErrorCode::kRefused, "receiver busy (too many connections); try again"});
        active->conn->Shutdown();
        active->done.store(true);
      });
      continue;
    }
    active->thread = std::thread([this, active] {
      ServeWatched(*active->conn, &active->watch);
      active->conn->Shutdown();
      active->done.store(true);
    });
  }
  {
    std::lock_guard lk(mu_);
    stopping_.store(true);
    cv_.notify_all();
    for (auto& a : conns_) a->conn->Shutdown();
    for (auto& a : refusing_) a->conn->Shutdown();
  }
  watchdog.join();
  reap(true);
  std::lock_guard lk(mu_);
  listener_ = nullptr;
  return Status::Ok();
}

void Server::Stop() {
  stopping_.store(true);
  std::lock_guard lk(mu_);
  if (listener_) listener_->Close();
  for (auto& a : conns_) a->conn->Shutdown();
  for (auto& a : refusing_) a->conn->Shutdown();
}

}  // namespace walferry::transport
