// Chunk codecs: round trips, the gzip member layout, and strict decoding.
#include <gtest/gtest.h>

#include "compress/codec.h"
#include "compress/gzip_member.h"
#include "compress_test_support.h"

namespace walferry::compress {
namespace {

using testing::Bytes;

Bytes Compress(Codec& c, const Bytes& raw) {
  Bytes out(c.Bound(raw.size()));
  auto n = c.Compress(raw, out);
  EXPECT_TRUE(n.ok()) << n.error().message();
  out.resize(n.ok() ? *n : 0);
  return out;
}

class CodecTest : public ::testing::TestWithParam<Algorithm> {};

TEST_P(CodecTest, RoundTripsManySizesAndLevels) {
  const Algorithm algo = GetParam();
  const int max_level = *MaxLevel(algo);
  for (int level : {1, DefaultLevel(algo), max_level}) {
    if (algo == Algorithm::kRaw) level = 0;
    auto codec = MakeCodec(algo, level);
    ASSERT_TRUE(codec.ok()) << codec.error().message();
    auto dec = MakeDecoder(algo);
    ASSERT_TRUE(dec.ok());
    for (std::size_t n : {0ul, 1ul, 2ul, 100ul, 4096ul, 65537ul, 1ul << 20}) {
      for (const Bytes& raw : {testing::TextBytes(n), testing::RandomBytes(n), Bytes(n)}) {
        Bytes frame = Compress(**codec, raw);
        if (algo != Algorithm::kRaw) {
          ASSERT_FALSE(frame.empty());
        }
        Bytes back(raw.size());
        Status st = (*dec)->DecompressChunk(frame, back);
        ASSERT_TRUE(st.ok()) << AlgorithmName(algo) << " n=" << n << ": " << st.error().message();
        ASSERT_EQ(back, raw);
      }
    }
  }
}

TEST_P(CodecTest, DecoderRejectsTruncationTrailingBytesAndWrongSize) {
  const Algorithm algo = GetParam();
  auto codec = MakeCodec(algo, DefaultLevel(algo));
  auto dec = MakeDecoder(algo);
  Bytes raw = testing::TextBytes(100000);
  Bytes frame = Compress(**codec, raw);
  Bytes out(raw.size());
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{10}, frame.size() / 2,
                          frame.size() - 4, frame.size() - 1}) {
    Bytes part(frame.begin(), frame.begin() + cut);
    Status st = (*dec)->DecompressChunk(part, out);
    ASSERT_FALSE(st.ok()) << "cut at " << cut;
    EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt);
  }
  Bytes longer = frame;
  longer.push_back(std::byte{0});
  EXPECT_FALSE((*dec)->DecompressChunk(longer, out).ok());
  Bytes small(raw.size() - 1), big(raw.size() + 1);
  EXPECT_FALSE((*dec)->DecompressChunk(frame, small).ok());
  EXPECT_FALSE((*dec)->DecompressChunk(frame, big).ok());
  Bytes text = testing::TextBytes(5000);
  EXPECT_FALSE((*dec)->DecompressChunk(text, out).ok());
}

TEST_P(CodecTest, DecoderNeverReturnsWrongBytesOnBitFlips) {
  const Algorithm algo = GetParam();
  auto codec = MakeCodec(algo, DefaultLevel(algo));
  auto dec = MakeDecoder(algo);
  Bytes raw = testing::TextBytes(50000);
  Bytes frame = Compress(**codec, raw);
  int detected = 0, total = 0;
  for (std::size_t i = 0; i < frame.size(); i += 1 + frame.size() / 500) {
    for (int bit : {0, 5}) {
      Bytes bad = frame;
      bad[i] ^= std::byte(1 << bit);
      Bytes out(raw.size());
      Status st = (*dec)->DecompressChunk(bad, out);
      ++total;
      if (!st.ok()) {
        ++detected;
        EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt);
      } else {
        // Some header bits (gzip MTIME/OS, padding bits) carry no data.
        EXPECT_EQ(out, raw) << "flip at " << i << " decoded to different bytes";
      }
    }
  }
  EXPECT_GT(detected, total * 9 / 10);
}

INSTANTIATE_TEST_SUITE_P(All, CodecTest,
                         ::testing::Values(Algorithm::kZstd, Algorithm::kGzip),
                         [](const auto& info) { return std::string(AlgorithmName(info.param)); });

TEST(Codec, RawCopiesAndChecksTheSize) {
  auto codec = MakeCodec(Algorithm::kRaw, 0);
  auto dec = MakeDecoder(Algorithm::kRaw);
  Bytes raw = testing::TextBytes(1000);
  Bytes frame = Compress(**codec, raw);
  EXPECT_EQ(frame, raw);
  Bytes out(raw.size());
  ASSERT_TRUE((*dec)->DecompressChunk(frame, out).ok());
  EXPECT_EQ(out, raw);
  Bytes small(999);
  EXPECT_EQ((*dec)->DecompressChunk(frame, small).error().code(), ErrorCode::kCorrupt);
}

TEST(Codec, RejectsLevelsOutOfRange) {
  for (int l : {0, 20, -1}) EXPECT_FALSE(MakeCodec(Algorithm::kZstd, l).ok()) << l;
  for (int l : {0, 13}) {
    auto c = MakeCodec(Algorithm::kGzip, l);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  }
  for (int l = 1; l <= 12; ++l) EXPECT_TRUE(MakeCodec(Algorithm::kGzip, l).ok());
}

TEST(Codec, RejectsTooSmallOutput) {
  auto c = MakeCodec(Algorithm::kGzip, 6);
  Bytes raw = testing::TextBytes(1000);
  Bytes out(10);
  auto r = (*c)->Compress(raw, out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNoSpace);
}

TEST(Codec, GzipMemberRecordsItsSizesInTheExtraField) {
  auto c = MakeCodec(Algorithm::kGzip, 6);
  Bytes raw = testing::TextBytes(300000);
  Bytes member = Compress(**c, raw);
  gzip::HeaderInfo info;
  ASSERT_EQ(gzip::ParseHeader(member, &info), gzip::ParseState::kOk);
  EXPECT_EQ(info.header_size, gzip::kHeaderSize);
  ASSERT_TRUE(info.member_size.has_value());
  EXPECT_EQ(*info.member_size, member.size());
  EXPECT_EQ(*info.raw_size, raw.size());
  // The standard trailer: ISIZE is the raw size.
  EXPECT_EQ(LoadLe<std::uint32_t>(member.data() + member.size() - 4), raw.size());
}

TEST(Codec, GzipHeaderParserHandlesForeignHeaders) {
  // FNAME + FCOMMENT, no extra field: a stock gzip header.
  Bytes h = {std::byte{0x1f}, std::byte{0x8b}, std::byte{8}, std::byte{0x18}, {}, {}, {}, {},
             {}, std::byte{3}, std::byte{'a'}, {}, std::byte{'c'}, {}};
  gzip::HeaderInfo info;
  for (std::size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(gzip::ParseHeader(std::span(h).first(n), &info), gzip::ParseState::kNeedMore) << n;
  }
  ASSERT_EQ(gzip::ParseHeader(h, &info), gzip::ParseState::kOk);
  EXPECT_EQ(info.header_size, h.size());
  EXPECT_FALSE(info.member_size.has_value());
  h[3] = std::byte{0x20};  // reserved flag
  EXPECT_EQ(gzip::ParseHeader(h, &info), gzip::ParseState::kBad);
}

TEST(Codec, DetectsFormats) {
  auto z = MakeCodec(Algorithm::kZstd, 3);
  auto g = MakeCodec(Algorithm::kGzip, 6);
  Bytes raw = testing::TextBytes(100);
  EXPECT_EQ(*DetectAlgorithm(Compress(**z, raw)), Algorithm::kZstd);
  EXPECT_EQ(*DetectAlgorithm(Compress(**g, raw)), Algorithm::kGzip);
  auto bad = DetectAlgorithm(raw);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(DetectAlgorithm({}).ok());
}

TEST(Codec, LevelMappingIsMonotonic) {
  for (int l = 2; l <= 12; ++l) EXPECT_LE(LibdeflateLevel(l - 1), LibdeflateLevel(l));
  EXPECT_EQ(LibdeflateLevel(1), 1);
  EXPECT_EQ(LibdeflateLevel(12), 12);
}

}  // namespace
}  // namespace walferry::compress
