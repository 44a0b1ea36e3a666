// The receiver's read side: HAVE (does the store hold this exact content?)
// and FETCH (stream a stored entry back as OPEN, CHUNK*, COMMIT).
#include <algorithm>

#include "core/hash.h"
#include "transport/session_internal.h"

namespace walferry::transport {
namespace {

constexpr std::uint32_t kFetchChunk = 1u << 20;

// Size and XXH3-128 of what is read through it.
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
};

// Cuts an entry's raw content into chunks and sends each as it fills.
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
};

}  // namespace

bool Server::Session::Have(const HaveFrame& have) {
  auto t0 = std::chrono::steady_clock::now();
  WireHave answer = WireHave::kAbsent;
  const bool probe = have.raw_size == kUnknownSize;  // the name alone (kFeatureHaveProbe)
  if (store::ClassifyName(have.name).ok()) {
    auto entry = s_.store_.Find(cluster_, have.name);
    if (probe) {
      return writer_.Write(HaveReplyFrame{entry.ok() ? WireHave::kPresent : WireHave::kAbsent}).ok();
    }
    HashSink sink;
    // Through the archive (disk or object store), verified as any read, its
    // buffers charged to the budget. No memory within buffer_wait: answered
    // kAbsent (the frames of the transfer that follows are admitted one by one).
    if (entry.ok() && LeaseRead(have.name, s_.store_.ReadMemory(*entry)).ok()) {
      if (s_.store_.Read(*entry, sink).ok()) {
        answer = sink.size == have.raw_size && sink.hash.Digest() == have.raw_hash ? WireHave::kIdentical
                                                                                   : WireHave::kDifferent;
      }
      ShrinkLease();
    }
  }
  if (!writer_.Write(HaveReplyFrame{answer}).ok()) return false;
  if (answer != WireHave::kAbsent) {
    s_.Log(Prefix() + " have name=" + have.name + (answer == WireHave::kIdentical ? " identical" : " different") +
           " ms=" + internal::MsSince(t0));
  }
  return true;
}

bool Server::Session::Fetch(const FetchFrame& fetch) {
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
  const std::uint64_t need = s_.store_.ReadMemory(*entry) + kHeaderSize + kFetchChunk +
                             compress::MaxCompressedSize(kFetchChunk) + kRecompressContext;
  if (Status lease = LeaseRead(fetch.name, need); !lease.ok()) {
    busy_ = lease.error().code() == ErrorCode::kNetwork;
    Fail(lease.error(), what);
    return false;
  }
  // Gives the read's share back however the FETCH ends.
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
  ChunkSink sink(writer_, **codec);
  Status st = s_.store_.Read(*entry, sink);
  if (!st.ok()) {
    Fail(st.error(), what);
    return false;
  }
  if (!writer_.Write(CommitFrame{sink.size(), sink.Digest()}).ok()) return false;
  s_.Log(Prefix() + " " + what + " sent bytes=" + std::to_string(sink.size()) + " ms=" + internal::MsSince(t0));
  return true;
}

}  // namespace walferry::transport
