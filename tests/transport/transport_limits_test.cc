// The wire limits agree with the codecs (issue 8, point 1): no codec can
// produce a chunk payload larger than the CHUNK limit, the encoder refuses
// what the parser would refuse, and a sender does not keep retrying a
// receiver that refuses its frames as a protocol violation.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <memory>

#include "compress/codec.h"
#include "core/stream.h"
#include "transport/sender.h"
#include "transport/wire.h"

namespace walferry::transport {
namespace {

TEST(WireLimits, EveryCodecBoundFitsTheChunkLimit) {
  struct Case {
    compress::Algorithm a;
    int level;
  } cases[] = {{compress::Algorithm::kZstd, 1},  {compress::Algorithm::kZstd, 3},
               {compress::Algorithm::kZstd, 19}, {compress::Algorithm::kGzip, 1},
               {compress::Algorithm::kGzip, 6},  {compress::Algorithm::kGzip, 12},
               {compress::Algorithm::kRaw, 0}};
  for (const auto& c : cases) {
    auto codec = compress::MakeCodec(c.a, c.level);
    ASSERT_TRUE(codec.ok());
    EXPECT_LE((*codec)->Bound(kMaxChunkRaw), kMaxChunkWire) << compress::AlgorithmName(c.a) << c.level;
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{1} << 20,
                          std::size_t{kMaxChunkRaw}, compress::kMaxChunkSize}) {
      EXPECT_LE((*codec)->Bound(n), compress::MaxCompressedSize(n)) << compress::AlgorithmName(c.a) << " n=" << n;
    }
  }
  // The largest frame still passes the header check.
  std::array<std::byte, kHeaderSize> h{std::byte{'W'}, std::byte{'F'}, std::byte{4}, std::byte{0}};
  const std::uint32_t body = kChunkFixedSize + kMaxChunkWire;
  for (int i = 0; i < 4; ++i) h[4 + i] = std::byte(static_cast<std::uint8_t>(body >> (8 * i)));
  EXPECT_TRUE(ParseHeader(h).ok());
}

TEST(WireLimits, EncoderRefusesWhatTheParserRefuses) {
  std::vector<std::byte> payload(kMaxChunkRaw + 1, std::byte{7});
  std::vector<std::byte> out;
  ChunkFrame c{0, 0, 100, 0, WireCodec::kZstd, 0, std::span<const std::byte>(payload).first(100)};
  EXPECT_TRUE(EncodeChunkHead(c, out).ok());
  // Payload far beyond what any codec makes of 100 raw bytes.
  c.payload = std::span<const std::byte>(payload).first(compress::MaxCompressedSize(100) + 1);
  EXPECT_FALSE(EncodeChunkHead(c, out).ok());
  // A raw chunk whose payload is not its raw length.
  c.codec = WireCodec::kRaw;
  c.payload = std::span<const std::byte>(payload).first(99);
  EXPECT_FALSE(EncodeChunkHead(c, out).ok());
  // A raw chunk beyond the raw limit.
  c.raw_len = kMaxChunkRaw + 1;
  c.payload = payload;
  EXPECT_FALSE(EncodeChunkHead(c, out).ok());
  // Encoded chunks parse: the largest raw chunk, sent raw.
  c.raw_len = kMaxChunkRaw;
  c.payload = std::span<const std::byte>(payload).first(kMaxChunkRaw);
  std::vector<std::byte> frame;
  ASSERT_TRUE(EncodeFrame(Frame(c), frame).ok());
  std::size_t need = 0;
  auto parsed = ParseFrame(frame, &need);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->consumed, frame.size());
}

class MemSource final : public ByteSource {
 public:
  explicit MemSource(std::string s) : s_(std::move(s)) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    std::size_t n = std::min(buf.size(), s_.size() - pos_);
    if (n) std::memcpy(buf.data(), s_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  long long SizeHint() const override { return -1; }
  const std::string& name() const override { return name_; }

 private:
  std::string s_, name_ = "mem";
  std::size_t pos_ = 0;
};

// A receiver that answers HELLO and then refuses every OPEN as a protocol error.
class RefusingConn final : public Conn {
 public:
  explicit RefusingConn(int* frames_seen) : frames_seen_(frames_seen) {}
  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    if (out_.empty()) return std::size_t{0};
    std::size_t n = std::min(buf.size(), out_.size());
    for (std::size_t i = 0; i < n; ++i) {
      buf[i] = out_.front();
      out_.pop_front();
    }
    return n;
  }
  Status WriteAll(std::span<const std::byte> data) override {
    in_.insert(in_.end(), data.begin(), data.end());
    for (;;) {
      std::size_t need = 0;
      auto f = ParseFrame(in_, &need);
      if (!f.ok()) return f.error();
      if (f->consumed == 0) return Status::Ok();
      in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(f->consumed));
      ++*frames_seen_;
      std::vector<std::byte> reply;
      if (TypeOf(f->frame) == FrameType::kHello) {
        WF_TRY(EncodeFrame(HelloFrame{kProtocolVersion, kFeatureNone, "main"}, reply));
      } else {
        WF_TRY(EncodeFrame(ErrorFrame{ErrorCode::kProtocol, "bad frame: CHUNK body length"}, reply));
      }
      out_.insert(out_.end(), reply.begin(), reply.end());
    }
  }
  void Shutdown() override {}
  const std::string& peer_cluster() const override { return cluster_; }
  std::string peer_address() const override { return "fake"; }
  void SetTimeout(std::chrono::milliseconds) override {}

 private:
  int* frames_seen_;
  std::vector<std::byte> in_;
  std::deque<std::byte> out_;
  std::string cluster_;
};

TEST(WireLimits, SenderDoesNotRetryProtocolErrorsForever) {
  int connects = 0, frames = 0;
  SendOptions o;
  o.connect = [&]() -> Result<std::unique_ptr<Conn>> {
    ++connects;
    return std::unique_ptr<Conn>(new RefusingConn(&frames));
  };
  o.max_retries = 50;
  o.backoff_initial = std::chrono::milliseconds(1);
  o.backoff_max = std::chrono::milliseconds(1);
  Sender s(o);
  MemSource src(std::string(1000, 'x'));
  auto r = s.SendStream(src, "x.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocol) << r.error().message();
  // One first attempt and a bounded number of retries, not max_retries.
  EXPECT_GE(connects, 1);
  EXPECT_LE(connects, 3) << "retried a protocol error " << connects - 1 << " times";
}

}  // namespace
}  // namespace walferry::transport
