#include "transport/wire.h"

#include "core/bytes.h"

#include <algorithm>
#include <cstring>

#include "transport/net.h"

namespace walferry::transport {
namespace {

// Fixed body sizes (see docs/wire-format.md).
constexpr std::uint32_t kHelloFixed = 7;       // version u16, features u32, cluster_len u8
constexpr std::uint32_t kOpenFixed = 32;       // id 16, raw_size 8, chunk_size 4, kind, codec, name_len u16
constexpr std::uint32_t kOpenedSize = 24;
constexpr std::uint32_t kAckSize = 8;
constexpr std::uint32_t kCommitSize = 24;
constexpr std::uint32_t kCommittedSize = 8;
constexpr std::uint32_t kErrorFixed = 4;       // code u8, reserved u8, msg_len u16
constexpr std::uint32_t kFetchFixed = 10;      // offset u64, name_len u16
constexpr std::uint32_t kHaveFixed = 26;       // raw_size u64, hash low u64, high u64, name_len u16
constexpr std::uint32_t kHaveReplySize = 8;    // answer u8, reserved 7

Error Bad(std::string what) { return Error(ErrorCode::kProtocol, "bad frame: " + what); }

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}
  void U8(std::uint8_t v) { out_.push_back(std::byte{v}); }
  void U16(std::uint16_t v) { Le(v, 2); }
  void U32(std::uint32_t v) { Le(v, 4); }
  void U64(std::uint64_t v) { Le(v, 8); }
  void Zero(std::size_t n) { out_.insert(out_.end(), n, std::byte{0}); }
  void Bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out_.insert(out_.end(), b, b + n);
  }

 private:
  void Le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(std::byte(static_cast<std::uint8_t>(v >> (8 * i))));
  }
  std::vector<std::byte>& out_;
};

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  std::size_t left() const { return in_.size() - pos_; }
  std::uint8_t U8() { return static_cast<std::uint8_t>(Le(1)); }
  std::uint16_t U16() { return static_cast<std::uint16_t>(Le(2)); }
  std::uint32_t U32() { return static_cast<std::uint32_t>(Le(4)); }
  std::uint64_t U64() { return Le(8); }
  // Caller has checked left() >= n.
  std::span<const std::byte> Take(std::size_t n) {
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  bool AllZero(std::size_t n) {
    for (std::byte b : Take(n)) {
      if (b != std::byte{0}) return false;
    }
    return true;
  }

 private:
  std::uint64_t Le(int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t(std::to_integer<std::uint8_t>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

std::string AsString(std::span<const std::byte> s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

bool ValidCodec(std::uint8_t c) { return c <= 2; }

// Body size bounds per type: [min, max].
bool BodyBounds(FrameType t, std::uint32_t* lo, std::uint32_t* hi) {
  switch (t) {
    case FrameType::kHello: *lo = kHelloFixed; *hi = kHelloFixed + kMaxClusterLen; return true;
    case FrameType::kOpen: *lo = kOpenFixed + 1; *hi = kOpenFixed + kMaxNameLen; return true;
    case FrameType::kOpened: *lo = *hi = kOpenedSize; return true;
    case FrameType::kChunk: *lo = kChunkFixedSize + 1; *hi = kMaxFrameBody; return true;
    case FrameType::kAck: *lo = *hi = kAckSize; return true;
    case FrameType::kCommit: *lo = *hi = kCommitSize; return true;
    case FrameType::kCommitted: *lo = *hi = kCommittedSize; return true;
    case FrameType::kError: *lo = kErrorFixed; *hi = kErrorFixed + kMaxMessageLen; return true;
    case FrameType::kFetch: *lo = kFetchFixed + 1; *hi = kFetchFixed + kMaxNameLen; return true;
    case FrameType::kHave: *lo = kHaveFixed + 1; *hi = kHaveFixed + kMaxNameLen; return true;
    case FrameType::kHaveReply: *lo = *hi = kHaveReplySize; return true;
  }
  return false;
}

void Header(Writer& w, FrameType t, std::uint32_t body_len) {
  w.U8('W');
  w.U8('F');
  w.U8(static_cast<std::uint8_t>(t));
  w.U8(0);
  w.U32(body_len);
}

constexpr ErrorCode kWireCodes[] = {
    ErrorCode::kOk,        ErrorCode::kInvalidArgument, ErrorCode::kNotFound,
    ErrorCode::kExists,    ErrorCode::kExistsDifferent, ErrorCode::kCorrupt,
    ErrorCode::kIo,        ErrorCode::kNoSpace,         ErrorCode::kNetwork,
    ErrorCode::kAuth,      ErrorCode::kProtocol,        ErrorCode::kUnsupported,
    ErrorCode::kRefused,   ErrorCode::kInternal,
};

}  // namespace

std::string_view FrameTypeName(FrameType t) {
  switch (t) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kOpen: return "OPEN";
    case FrameType::kOpened: return "OPENED";
    case FrameType::kChunk: return "CHUNK";
    case FrameType::kAck: return "ACK";
    case FrameType::kCommit: return "COMMIT";
    case FrameType::kCommitted: return "COMMITTED";
    case FrameType::kError: return "ERROR";
    case FrameType::kFetch: return "FETCH";
    case FrameType::kHave: return "HAVE";
    case FrameType::kHaveReply: return "HAVE_REPLY";
  }
  return "?";
}

FrameType TypeOf(const Frame& f) { return static_cast<FrameType>(f.index() + 1); }

std::uint8_t ErrorCodeToWire(ErrorCode c) {
  for (std::size_t i = 0; i < std::size(kWireCodes); ++i) {
    if (kWireCodes[i] == c) return static_cast<std::uint8_t>(i);
  }
  return static_cast<std::uint8_t>(std::size(kWireCodes) - 1);
}

ErrorCode ErrorCodeFromWire(std::uint8_t b) {
  return b < std::size(kWireCodes) ? kWireCodes[b] : ErrorCode::kInternal;
}

std::string TransferIdHex(const std::array<std::uint8_t, 16>& id) {
  std::string s;
  s.reserve(32);
  for (std::uint8_t b : id) {
    s.push_back(kHexLower[b >> 4]);
    s.push_back(kHexLower[b & 15]);
  }
  return s;
}

Result<FrameHeader> ParseHeader(std::span<const std::byte, kHeaderSize> h) {
  if (h[0] != kMagic0 || h[1] != kMagic1) return Bad("no WF magic (not a walferry peer?)");
  auto type = std::to_integer<std::uint8_t>(h[2]);
  if (type < 1 || type > static_cast<std::uint8_t>(FrameType::kHaveReply)) return Bad("unknown frame type " + std::to_string(type));
  if (h[3] != std::byte{0}) return Bad("non-zero flags");
  std::uint32_t len = 0;
  for (int i = 0; i < 4; ++i) len |= std::uint32_t(std::to_integer<std::uint8_t>(h[4 + i])) << (8 * i);
  FrameHeader fh{static_cast<FrameType>(type), len};
  std::uint32_t lo = 0, hi = 0;
  BodyBounds(fh.type, &lo, &hi);
  if (len < lo || len > hi) {
    return Bad(std::string(FrameTypeName(fh.type)) + " body length " + std::to_string(len) +
               " outside " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return fh;
}

// Long on purpose: one case per frame type in docs/wire-format.md's order,
// read against the spec field by field.
Result<Frame> ParseBody(const FrameHeader& h, std::span<const std::byte> body) {
  std::uint32_t lo = 0, hi = 0;
  if (!BodyBounds(h.type, &lo, &hi)) return Bad("unknown frame type");
  if (body.size() != h.body_len || body.size() < lo || body.size() > hi) return Bad("body length");
  Reader r(body);
  switch (h.type) {
    case FrameType::kHello: {
      HelloFrame f;
      f.version = r.U16();
      f.features = r.U32();
      std::uint8_t n = r.U8();
      if (n > kMaxClusterLen || r.left() != n) return Bad("HELLO cluster length");
      f.cluster = AsString(r.Take(n));
      return Frame(std::move(f));
    }
    case FrameType::kOpen: {
      OpenFrame f;
      auto id = r.Take(16);
      std::memcpy(f.transfer_id.data(), id.data(), 16);
      f.raw_size = r.U64();
      f.chunk_size = r.U32();
      std::uint8_t kind = r.U8();
      std::uint8_t codec = r.U8();
      std::uint16_t n = r.U16();
      if (f.chunk_size == 0 || f.chunk_size > kMaxChunkRaw) return Bad("OPEN chunk size");
      if (kind > 4) return Bad("OPEN kind");
      if (!ValidCodec(codec)) return Bad("OPEN codec");
      if (f.raw_size != kUnknownSize && f.raw_size > (std::uint64_t{1} << 62)) return Bad("OPEN size");
      if (n == 0 || n > kMaxNameLen || r.left() != n) return Bad("OPEN name length");
      f.kind = static_cast<WireKind>(kind);
      f.codec = static_cast<WireCodec>(codec);
      f.name = AsString(r.Take(n));
      return Frame(std::move(f));
    }
    case FrameType::kOpened: {
      OpenedFrame f;
      f.resume_from_chunk = r.U64();
      f.resume_raw_offset = r.U64();
      std::uint8_t store = r.U8();
      std::uint8_t codec = r.U8();
      if (!r.AllZero(2)) return Bad("OPENED reserved bytes");
      f.ack_every = r.U32();
      if (store > 2) return Bad("OPENED store format");
      if (!ValidCodec(codec)) return Bad("OPENED codec");
      if (f.ack_every == 0 || f.ack_every > 1024) return Bad("OPENED ack interval");
      f.store = static_cast<WireStore>(store);
      f.codec = static_cast<WireCodec>(codec);
      return Frame(f);
    }
    case FrameType::kChunk: {
      ChunkFrame f;
      f.index = r.U64();
      f.raw_offset = r.U64();
      f.raw_len = r.U32();
      f.wire_len = r.U32();
      f.raw_xxh3 = r.U64();
      std::uint8_t codec = r.U8();
      if (!r.AllZero(7)) return Bad("CHUNK reserved bytes");
      if (!ValidCodec(codec)) return Bad("CHUNK codec");
      if (f.raw_len == 0 || f.raw_len > kMaxChunkRaw) return Bad("CHUNK raw length");
      if (f.wire_len == 0 || f.wire_len > kMaxChunkWire || r.left() != f.wire_len ||
          f.wire_len > compress::MaxCompressedSize(f.raw_len)) {
        return Bad("CHUNK payload length");
      }
      f.codec = static_cast<WireCodec>(codec);
      if (f.codec == WireCodec::kRaw && f.wire_len != f.raw_len) return Bad("raw CHUNK length mismatch");
      f.payload = r.Take(f.wire_len);
      return Frame(f);
    }
    case FrameType::kAck: {
      AckFrame f;
      f.durable_chunks = r.U64();
      return Frame(f);
    }
    case FrameType::kCommit: {
      CommitFrame f;
      f.raw_size = r.U64();
      f.raw_hash.low = r.U64();
      f.raw_hash.high = r.U64();
      return Frame(f);
    }
    case FrameType::kCommitted: {
      CommittedFrame f;
      std::uint8_t o = r.U8();
      if (!r.AllZero(7)) return Bad("COMMITTED reserved bytes");
      if (o != 1 && o != 2) return Bad("COMMITTED outcome");
      f.outcome = static_cast<WireOutcome>(o);
      return Frame(f);
    }
    case FrameType::kError: {
      ErrorFrame f;
      std::uint8_t code = r.U8();
      if (!r.AllZero(1)) return Bad("ERROR reserved byte");
      std::uint16_t n = r.U16();
      if (n > kMaxMessageLen || r.left() != n) return Bad("ERROR message length");
      f.code = ErrorCodeFromWire(code);
      if (f.code == ErrorCode::kOk) f.code = ErrorCode::kInternal;
      f.message = AsString(r.Take(n));
      return Frame(std::move(f));
    }
    case FrameType::kFetch: {
      FetchFrame f;
      f.offset = r.U64();
      std::uint16_t n = r.U16();
      if (n == 0 || n > kMaxNameLen || r.left() != n) return Bad("FETCH name length");
      f.name = AsString(r.Take(n));
      return Frame(std::move(f));
    }
    case FrameType::kHave: {
      HaveFrame f;
      f.raw_size = r.U64();
      f.raw_hash.low = r.U64();
      f.raw_hash.high = r.U64();
      std::uint16_t n = r.U16();
      if (n == 0 || n > kMaxNameLen || r.left() != n) return Bad("HAVE name length");
      f.name = AsString(r.Take(n));
      return Frame(std::move(f));
    }
    case FrameType::kHaveReply: {
      HaveReplyFrame f;
      std::uint8_t a = r.U8();
      if (!r.AllZero(7)) return Bad("HAVE_REPLY reserved bytes");
      if (a > static_cast<std::uint8_t>(WireHave::kPresent)) return Bad("HAVE_REPLY answer");
      f.answer = static_cast<WireHave>(a);
      return Frame(f);
    }
  }
  return Bad("unknown frame type");
}

Result<ParsedFrame> ParseFrame(std::span<const std::byte> bytes, std::size_t* need_more) {
  *need_more = 0;
  if (bytes.size() < kHeaderSize) {
    *need_more = kHeaderSize;
    return ParsedFrame{};
  }
  WF_ASSIGN(FrameHeader h, ParseHeader(bytes.first<kHeaderSize>()));
  std::size_t total = kHeaderSize + std::size_t{h.body_len};
  if (bytes.size() < total) {
    *need_more = total;
    return ParsedFrame{};
  }
  WF_ASSIGN(Frame f, ParseBody(h, bytes.subspan(kHeaderSize, h.body_len)));
  return ParsedFrame{std::move(f), total};
}

Status EncodeChunkHead(const ChunkFrame& c, std::vector<std::byte>& out) {
  out.clear();
  const std::size_t n = c.payload.size();
  if (c.raw_len == 0 || c.raw_len > kMaxChunkRaw || n == 0 || n > kMaxChunkWire ||
      n > compress::MaxCompressedSize(c.raw_len) || !ValidCodec(static_cast<std::uint8_t>(c.codec)) ||
      (c.codec == WireCodec::kRaw && n != c.raw_len)) {
    return Error(ErrorCode::kInternal, "refusing to encode chunk " + std::to_string(c.index) + ": " +
                                           std::to_string(c.raw_len) + " raw bytes as " + std::to_string(n) +
                                           " payload bytes breaks the wire limits");
  }
  Writer w(out);
  Header(w, FrameType::kChunk, static_cast<std::uint32_t>(kChunkFixedSize + c.payload.size()));
  w.U64(c.index);
  w.U64(c.raw_offset);
  w.U32(c.raw_len);
  w.U32(static_cast<std::uint32_t>(c.payload.size()));
  w.U64(c.raw_xxh3);
  w.U8(static_cast<std::uint8_t>(c.codec));
  w.Zero(7);
  return Status::Ok();
}

// Long on purpose: the mirror of ParseBody, one case per frame type.
Status EncodeFrame(const Frame& frame, std::vector<std::byte>& out) {
  Writer w(out);
  switch (TypeOf(frame)) {
    case FrameType::kHello: {
      const auto& f = std::get<HelloFrame>(frame);
      if (f.cluster.size() > kMaxClusterLen) return Error(ErrorCode::kInvalidArgument, "cluster name too long");
      Header(w, FrameType::kHello, static_cast<std::uint32_t>(kHelloFixed + f.cluster.size()));
      w.U16(f.version);
      w.U32(f.features);
      w.U8(static_cast<std::uint8_t>(f.cluster.size()));
      w.Bytes(f.cluster.data(), f.cluster.size());
      return Status::Ok();
    }
    case FrameType::kOpen: {
      const auto& f = std::get<OpenFrame>(frame);
      if (f.name.empty() || f.name.size() > kMaxNameLen) {
        return Error(ErrorCode::kInvalidArgument, "name must be 1..255 bytes");
      }
      Header(w, FrameType::kOpen, static_cast<std::uint32_t>(kOpenFixed + f.name.size()));
      w.Bytes(f.transfer_id.data(), 16);
      w.U64(f.raw_size);
      w.U32(f.chunk_size);
      w.U8(static_cast<std::uint8_t>(f.kind));
      w.U8(static_cast<std::uint8_t>(f.codec));
      w.U16(static_cast<std::uint16_t>(f.name.size()));
      w.Bytes(f.name.data(), f.name.size());
      return Status::Ok();
    }
    case FrameType::kOpened: {
      const auto& f = std::get<OpenedFrame>(frame);
      Header(w, FrameType::kOpened, kOpenedSize);
      w.U64(f.resume_from_chunk);
      w.U64(f.resume_raw_offset);
      w.U8(static_cast<std::uint8_t>(f.store));
      w.U8(static_cast<std::uint8_t>(f.codec));
      w.Zero(2);
      w.U32(f.ack_every);
      return Status::Ok();
    }
    case FrameType::kChunk: {
      const auto& f = std::get<ChunkFrame>(frame);
      std::vector<std::byte> head;
      WF_TRY(EncodeChunkHead(f, head));
      out.insert(out.end(), head.begin(), head.end());
      out.insert(out.end(), f.payload.begin(), f.payload.end());
      return Status::Ok();
    }
    case FrameType::kAck: {
      Header(w, FrameType::kAck, kAckSize);
      w.U64(std::get<AckFrame>(frame).durable_chunks);
      return Status::Ok();
    }
    case FrameType::kCommit: {
      const auto& f = std::get<CommitFrame>(frame);
      Header(w, FrameType::kCommit, kCommitSize);
      w.U64(f.raw_size);
      w.U64(f.raw_hash.low);
      w.U64(f.raw_hash.high);
      return Status::Ok();
    }
    case FrameType::kCommitted: {
      Header(w, FrameType::kCommitted, kCommittedSize);
      w.U8(static_cast<std::uint8_t>(std::get<CommittedFrame>(frame).outcome));
      w.Zero(7);
      return Status::Ok();
    }
    case FrameType::kError: {
      const auto& f = std::get<ErrorFrame>(frame);
      std::size_t n = std::min(f.message.size(), kMaxMessageLen);
      Header(w, FrameType::kError, static_cast<std::uint32_t>(kErrorFixed + n));
      w.U8(ErrorCodeToWire(f.code));
      w.U8(0);
      w.U16(static_cast<std::uint16_t>(n));
      w.Bytes(f.message.data(), n);
      return Status::Ok();
    }
    case FrameType::kFetch: {
      const auto& f = std::get<FetchFrame>(frame);
      if (f.name.empty() || f.name.size() > kMaxNameLen) {
        return Error(ErrorCode::kInvalidArgument, "name must be 1..255 bytes");
      }
      Header(w, FrameType::kFetch, static_cast<std::uint32_t>(kFetchFixed + f.name.size()));
      w.U64(f.offset);
      w.U16(static_cast<std::uint16_t>(f.name.size()));
      w.Bytes(f.name.data(), f.name.size());
      return Status::Ok();
    }
    case FrameType::kHave: {
      const auto& f = std::get<HaveFrame>(frame);
      if (f.name.empty() || f.name.size() > kMaxNameLen) {
        return Error(ErrorCode::kInvalidArgument, "name must be 1..255 bytes");
      }
      Header(w, FrameType::kHave, static_cast<std::uint32_t>(kHaveFixed + f.name.size()));
      w.U64(f.raw_size);
      w.U64(f.raw_hash.low);
      w.U64(f.raw_hash.high);
      w.U16(static_cast<std::uint16_t>(f.name.size()));
      w.Bytes(f.name.data(), f.name.size());
      return Status::Ok();
    }
    case FrameType::kHaveReply: {
      Header(w, FrameType::kHaveReply, kHaveReplySize);
      w.U8(static_cast<std::uint8_t>(std::get<HaveReplyFrame>(frame).answer));
      w.Zero(7);
      return Status::Ok();
    }
  }
  return Error(ErrorCode::kInternal, "unknown frame");
}

Result<Frame> FrameReader::Read() {
  std::array<std::byte, kHeaderSize> head;
  WF_TRY(conn_.ReadExact(head));
  WF_ASSIGN(FrameHeader h, ParseHeader(head));
  // Admitted (the receiver's memory budget) before anything is allocated for it.
  if (admission_) WF_TRY(admission_->Admit(h));
  // h.body_len is bounded by ParseHeader (<= kMaxFrameBody). The capacity is
  // reserved at once (address space only: no page is touched, nothing copied
  // later), the size grows with the bytes that actually arrive (doubling from
  // 64 KiB), so a peer that announces a large frame and then sends little
  // costs little memory (bench/receiver_rss.sh).
  constexpr std::size_t kFirstStep = 64 * 1024;
  if (buf_.capacity() < kHeaderSize + h.body_len) buf_.reserve(kHeaderSize + h.body_len);
  if (buf_.size() < kHeaderSize) buf_.resize(kHeaderSize);
  std::copy(head.begin(), head.end(), buf_.begin());
  std::size_t have = 0;
  while (have < h.body_len) {
    std::size_t want = std::min<std::size_t>(h.body_len, std::max(kFirstStep, 2 * have));
    if (buf_.size() < kHeaderSize + want) buf_.resize(kHeaderSize + want);
    WF_TRY(conn_.ReadExact(std::span(buf_.data() + kHeaderSize + have, want - have)));
    have = want;
  }
  auto body = std::span(buf_.data() + kHeaderSize, h.body_len);
  return ParseBody(h, body);
}

Status FrameWriter::Write(const Frame& f) {
  if (TypeOf(f) == FrameType::kChunk) return WriteChunk(std::get<ChunkFrame>(f));
  buf_.clear();
  WF_TRY(EncodeFrame(f, buf_));
  return conn_.WriteAll(buf_);
}

Status FrameWriter::WriteChunk(const ChunkFrame& c) {
  WF_TRY(EncodeChunkHead(c, buf_));
  // Small payloads go in one write with the head; big ones as a second write.
  if (c.payload.size() <= 64 * 1024) {
    buf_.insert(buf_.end(), c.payload.begin(), c.payload.end());
    return conn_.WriteAll(buf_);
  }
  WF_TRY(conn_.WriteAll(buf_));
  return conn_.WriteAll(c.payload);
}

}  // namespace walferry::transport
