// Frame encode/parse: every frame round-trips, every bound is enforced,
// truncation asks for more bytes, garbage is refused without a crash.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "tests/support/fd_conn.h"
#include "tests/support/string_bytes.h"
#include "transport/wire.h"

namespace walferry::transport {
namespace {

std::vector<std::byte> Encode(const Frame& f) {
  std::vector<std::byte> out;
  EXPECT_TRUE(EncodeFrame(f, out).ok());
  return out;
}

Frame RoundTrip(const Frame& f) {
  auto bytes = Encode(f);
  std::size_t need = 0;
  auto r = ParseFrame(bytes, &need);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  EXPECT_EQ(need, 0u);
  EXPECT_EQ(r->consumed, bytes.size());
  return r->frame;
}

using testing_support::Bytes;

TEST(Wire, EveryFrameRoundTrips) {
  HelloFrame hello{kProtocolVersion, 5, "main"};
  EXPECT_EQ(std::get<HelloFrame>(RoundTrip(hello)), hello);

  OpenFrame open;
  for (int i = 0; i < 16; ++i) open.transfer_id[i] = static_cast<std::uint8_t>(i * 17);
  open.raw_size = 16 << 20;
  open.chunk_size = 1 << 20;
  open.kind = WireKind::kWal;
  open.codec = WireCodec::kGzip;
  open.name = "000000010000000000000001";
  EXPECT_EQ(std::get<OpenFrame>(RoundTrip(open)), open);
  open.raw_size = kUnknownSize;
  EXPECT_EQ(std::get<OpenFrame>(RoundTrip(open)), open);

  OpenedFrame opened{7, 7 << 20, WireStore::kRaw, WireCodec::kZstd, 8};
  EXPECT_EQ(std::get<OpenedFrame>(RoundTrip(opened)), opened);

  std::string payload = "compressed bytes";
  ChunkFrame chunk{3, 3 << 20, 1 << 20, static_cast<std::uint32_t>(payload.size()),
                   WireCodec::kZstd, 0x1234567890abcdefULL, Bytes(payload)};
  auto bytes = Encode(chunk);
  std::size_t need = 0;
  auto parsed = ParseFrame(bytes, &need);
  ASSERT_TRUE(parsed.ok());
  const auto& c = std::get<ChunkFrame>(parsed->frame);
  EXPECT_EQ(c.index, 3u);
  EXPECT_EQ(c.raw_offset, 3u << 20);
  EXPECT_EQ(c.raw_len, 1u << 20);
  EXPECT_EQ(c.wire_len, payload.size());
  EXPECT_EQ(c.raw_xxh3, 0x1234567890abcdefULL);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(c.payload.data()), c.payload.size()), payload);

  AckFrame ack{42};
  EXPECT_EQ(std::get<AckFrame>(RoundTrip(ack)), ack);
  CommitFrame commit{123456789, Hash128{1, 2}};
  EXPECT_EQ(std::get<CommitFrame>(RoundTrip(commit)), commit);
  CommittedFrame committed{WireOutcome::kIdentical};
  EXPECT_EQ(std::get<CommittedFrame>(RoundTrip(committed)), committed);
  ErrorFrame err{ErrorCode::kExistsDifferent, "archive already holds different content"};
  EXPECT_EQ(std::get<ErrorFrame>(RoundTrip(err)), err);
}

TEST(Wire, HaveFramesRoundTripAndAreBounded) {
  HaveFrame have{16u << 20, Hash128{0x0123456789abcdefull, 0xfedcba9876543210ull}, "000000020000000000000003"};
  EXPECT_EQ(std::get<HaveFrame>(RoundTrip(have)), have);
  HaveFrame probe{kUnknownSize, Hash128{}, "000000020000000000000003"};  // the name alone
  EXPECT_EQ(std::get<HaveFrame>(RoundTrip(probe)), probe);
  for (auto a : {WireHave::kAbsent, WireHave::kIdentical, WireHave::kDifferent, WireHave::kPresent}) {
    HaveReplyFrame r{a};
    EXPECT_EQ(std::get<HaveReplyFrame>(RoundTrip(r)), r);
  }
  std::vector<std::byte> out;
  EXPECT_FALSE(EncodeFrame(HaveFrame{1, {}, ""}, out).ok());
  EXPECT_FALSE(EncodeFrame(HaveFrame{1, {}, std::string(256, 'a')}, out).ok());
  // An answer outside the enum, and non-zero reserved bytes, are protocol errors.
  out.clear();
  ASSERT_TRUE(EncodeFrame(HaveReplyFrame{WireHave::kDifferent}, out).ok());
  std::size_t need = 0;
  auto bad = out;
  bad[kHeaderSize] = std::byte{4};
  EXPECT_EQ(ParseFrame(bad, &need).error().code(), ErrorCode::kProtocol);
  bad = out;
  bad[kHeaderSize + 7] = std::byte{1};
  EXPECT_EQ(ParseFrame(bad, &need).error().code(), ErrorCode::kProtocol);
  // A name length that disagrees with the body.
  out.clear();
  ASSERT_TRUE(EncodeFrame(have, out).ok());
  bad = out;
  bad[kHeaderSize + 24] = std::byte{23};
  EXPECT_EQ(ParseFrame(bad, &need).error().code(), ErrorCode::kProtocol);
  // Type 12 does not exist.
  bad = out;
  bad[2] = std::byte{12};
  EXPECT_EQ(ParseFrame(bad, &need).error().code(), ErrorCode::kProtocol);
}

TEST(Wire, ErrorCodesSurviveTheWire) {
  for (auto c : {ErrorCode::kNoSpace, ErrorCode::kExistsDifferent, ErrorCode::kRefused,
                 ErrorCode::kCorrupt, ErrorCode::kProtocol, ErrorCode::kAuth}) {
    EXPECT_EQ(ErrorCodeFromWire(ErrorCodeToWire(c)), c);
  }
  EXPECT_EQ(ErrorCodeFromWire(200), ErrorCode::kInternal);
}

TEST(Wire, LongErrorMessageIsCut) {
  ErrorFrame err{ErrorCode::kIo, std::string(5000, 'x')};
  auto f = std::get<ErrorFrame>(RoundTrip(err));
  EXPECT_EQ(f.message.size(), kMaxMessageLen);
}

TEST(Wire, EncoderRefusesOversizedStrings) {
  std::vector<std::byte> out;
  OpenFrame open;
  open.name = std::string(256, 'a');
  EXPECT_FALSE(EncodeFrame(open, out).ok());
  open.name = "";
  EXPECT_FALSE(EncodeFrame(open, out).ok());
  HelloFrame hello{1, 0, std::string(65, 'c')};
  EXPECT_FALSE(EncodeFrame(hello, out).ok());
}

TEST(Wire, TruncationAsksForMore) {
  OpenFrame open;
  open.name = "base.tar";
  auto bytes = Encode(open);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    std::size_t need = 0;
    auto r = ParseFrame(std::span(bytes.data(), n), &need);
    ASSERT_TRUE(r.ok()) << n;
    EXPECT_EQ(r->consumed, 0u);
    EXPECT_EQ(need, n < kHeaderSize ? kHeaderSize : bytes.size()) << n;
  }
}

// Builds a raw header with an arbitrary type and length.
std::array<std::byte, kHeaderSize> RawHeader(std::uint8_t type, std::uint32_t len, std::uint8_t flags = 0) {
  std::array<std::byte, kHeaderSize> h{std::byte{'W'}, std::byte{'F'}, std::byte{type}, std::byte{flags}};
  for (int i = 0; i < 4; ++i) h[4 + i] = std::byte(static_cast<std::uint8_t>(len >> (8 * i)));
  return h;
}

TEST(Wire, HeaderBoundsAreEnforcedBeforeAllocation) {
  EXPECT_TRUE(ParseHeader(RawHeader(4, kMaxFrameBody)).ok());
  EXPECT_FALSE(ParseHeader(RawHeader(4, kMaxFrameBody + 1)).ok());
  EXPECT_FALSE(ParseHeader(RawHeader(4, 0xffffffffu)).ok());
  EXPECT_FALSE(ParseHeader(RawHeader(4, kChunkFixedSize)).ok());  // empty payload
  EXPECT_FALSE(ParseHeader(RawHeader(1, 7 + 65)).ok());          // cluster > 64
  EXPECT_FALSE(ParseHeader(RawHeader(2, 32 + 256)).ok());        // name > 255
  EXPECT_FALSE(ParseHeader(RawHeader(2, 32)).ok());              // empty name
  EXPECT_FALSE(ParseHeader(RawHeader(5, 9)).ok());               // ACK is exactly 8
  EXPECT_FALSE(ParseHeader(RawHeader(8, 4 + 1025)).ok());        // message > 1024
  EXPECT_FALSE(ParseHeader(RawHeader(0, 8)).ok());               // unknown type
  EXPECT_FALSE(ParseHeader(RawHeader(9, 8)).ok());
  EXPECT_FALSE(ParseHeader(RawHeader(5, 8, 1)).ok());            // flags
  auto h = RawHeader(5, 8);
  h[0] = std::byte{'X'};
  EXPECT_FALSE(ParseHeader(h).ok());
  auto r = ParseHeader(RawHeader(4, kMaxFrameBody + 1));
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocol);
}

TEST(Wire, BodyFieldBoundsAreEnforced) {
  std::string payload(10, 'p');
  ChunkFrame chunk{0, 0, 100, 10, WireCodec::kZstd, 1, Bytes(payload)};
  auto good = Encode(chunk);
  std::size_t need = 0;
  ASSERT_TRUE(ParseFrame(good, &need).ok());

  auto mutate = [&](std::size_t off, std::uint8_t v) {
    auto b = good;
    b[off] = std::byte{v};
    return ParseFrame(b, &need).ok();
  };
  // wire_len disagreeing with the body length
  EXPECT_FALSE(mutate(kHeaderSize + 20, 11));
  // raw_len 0 and raw_len > 16 MiB
  {
    auto b = good;
    for (int i = 0; i < 4; ++i) b[kHeaderSize + 16 + i] = std::byte{0};
    EXPECT_FALSE(ParseFrame(b, &need).ok());
    b[kHeaderSize + 19] = std::byte{0x02};  // 32 MiB
    EXPECT_FALSE(ParseFrame(b, &need).ok());
  }
  EXPECT_FALSE(mutate(kHeaderSize + 32, 9));  // codec
  EXPECT_FALSE(mutate(kHeaderSize + 33, 1));  // reserved
  // raw codec must have wire_len == raw_len
  // (the encoder refuses to write one; a peer's bytes with codec raw and 10 of 100 bytes are refused)
  ChunkFrame raw{0, 0, 100, 10, WireCodec::kRaw, 1, Bytes(payload)};
  std::vector<std::byte> refused;
  EXPECT_FALSE(EncodeFrame(raw, refused).ok());
  EXPECT_FALSE(mutate(kHeaderSize + 32, 0));

  OpenFrame open;
  open.name = "x";
  auto ob = Encode(open);
  auto mut_open = [&](std::size_t off, std::uint8_t v) {
    auto b = ob;
    b[off] = std::byte{v};
    return ParseFrame(b, &need).ok();
  };
  EXPECT_TRUE(mut_open(kHeaderSize + 32, 'y'));
  EXPECT_FALSE(mut_open(kHeaderSize + 28, 7));  // kind
  EXPECT_FALSE(mut_open(kHeaderSize + 29, 7));  // codec
  EXPECT_FALSE(mut_open(kHeaderSize + 30, 2));  // name_len disagrees
  {
    auto b = ob;  // chunk size 0
    for (int i = 0; i < 4; ++i) b[kHeaderSize + 24 + i] = std::byte{0};
    EXPECT_FALSE(ParseFrame(b, &need).ok());
    b[kHeaderSize + 27] = std::byte{0x10};  // 256 MiB chunk size
    EXPECT_FALSE(ParseFrame(b, &need).ok());
  }
  auto opened = Encode(OpenedFrame{0, 0, WireStore::kZstd, WireCodec::kZstd, 8});
  auto mut_opened = [&](std::size_t off, std::uint8_t v) {
    auto b = opened;
    b[off] = std::byte{v};
    return ParseFrame(b, &need).ok();
  };
  EXPECT_FALSE(mut_opened(kHeaderSize + 16, 3));  // store
  EXPECT_FALSE(mut_opened(kHeaderSize + 17, 3));  // codec
  EXPECT_FALSE(mut_opened(kHeaderSize + 18, 1));  // reserved
  EXPECT_FALSE(mut_opened(kHeaderSize + 20, 0));  // ack_every 0
  auto committed = Encode(CommittedFrame{WireOutcome::kPlaced});
  committed[kHeaderSize] = std::byte{3};
  EXPECT_FALSE(ParseFrame(committed, &need).ok());
  auto hello = Encode(HelloFrame{1, 0, "ab"});
  hello[kHeaderSize + 6] = std::byte{1};  // cluster_len disagrees with the body
  EXPECT_FALSE(ParseFrame(hello, &need).ok());
}

TEST(Wire, GarbageNeverCrashes) {
  std::mt19937 rng(12345);
  std::size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<std::byte> b(rng() % 128);
    for (auto& x : b) x = std::byte(static_cast<std::uint8_t>(rng()));
    if (b.size() >= 2 && (i & 1)) {  // give half of them the magic to reach the body parsers
      b[0] = std::byte{'W'};
      b[1] = std::byte{'F'};
      if (b.size() >= 8) { b[2] = std::byte(static_cast<std::uint8_t>(1 + rng() % 11)); b[3] = std::byte{0}; }
    }
    std::size_t need = 0;
    auto r = ParseFrame(b, &need);
    if (r.ok() && r->consumed > 0) ++accepted;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kProtocol);
    }
  }
  SUCCEED() << accepted;
}

TEST(Wire, ReaderAndWriterOverASocket) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto a = MakeFdConn(UniqueFd(sv[0]), "", "a");
  auto b = MakeFdConn(UniqueFd(sv[1]), "", "b");
  std::vector<std::byte> big(3 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = std::byte(static_cast<std::uint8_t>(i * 7));
  std::thread writer([&] {
    FrameWriter w(*a);
    ASSERT_TRUE(w.Write(HelloFrame{1, 0, "main"}).ok());
    ChunkFrame c{0, 0, static_cast<std::uint32_t>(big.size()), static_cast<std::uint32_t>(big.size()),
                 WireCodec::kRaw, 9, big};
    ASSERT_TRUE(w.WriteChunk(c).ok());
    ASSERT_TRUE(w.Write(AckFrame{5}).ok());
    a->Shutdown();
  });
  FrameReader r(*b);
  auto f1 = r.Read();
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(std::get<HelloFrame>(*f1).cluster, "main");
  auto f2 = r.Read();
  ASSERT_TRUE(f2.ok());
  const auto& c = std::get<ChunkFrame>(*f2);
  ASSERT_EQ(c.payload.size(), big.size());
  EXPECT_TRUE(std::equal(c.payload.begin(), c.payload.end(), big.begin()));
  auto f3 = r.Read();
  ASSERT_TRUE(f3.ok());
  EXPECT_EQ(std::get<AckFrame>(*f3).durable_chunks, 5u);
  auto f4 = r.Read();
  ASSERT_FALSE(f4.ok());
  EXPECT_EQ(f4.error().code(), ErrorCode::kNetwork);
  writer.join();
}

TEST(Wire, ReaderRefusesOversizedHeaderWithoutReadingBody) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto a = MakeFdConn(UniqueFd(sv[0]), "", "a");
  auto b = MakeFdConn(UniqueFd(sv[1]), "", "b");
  auto h = RawHeader(4, 0x7fffffffu);
  ASSERT_TRUE(a->WriteAll(h).ok());
  FrameReader r(*b);
  auto f = r.Read();
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kProtocol);
}

}  // namespace
}  // namespace walferry::transport
