// The parallel pipelines: CompressChunks/CompressStream and DecompressStream.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include "compress/codec.h"
#include "core/hash.h"
#include "compress_test_support.h"

namespace walferry::compress {
namespace {

using testing::Bytes;
using testing::MemSink;
using testing::MemSource;

Bytes CompressAll(const Bytes& raw, const PipelineOptions& opt, std::size_t max_read = SIZE_MAX) {
  MemSource src(raw, max_read);
  MemSink sink;
  Status st = CompressStream(src, sink, opt);
  EXPECT_TRUE(st.ok()) << st.error().message();
  EXPECT_TRUE(sink.finished);
  return sink.data;
}

Result<Bytes> DecompressAll(const Bytes& packed, std::size_t threads = 2,
                            std::size_t max_read = SIZE_MAX) {
  MemSource src(packed, max_read);
  MemSink sink;
  Status st = DecompressStream(src, sink, threads);
  if (!st.ok()) return st.error();
  return sink.data;
}

Bytes Concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

class PipelineTest : public ::testing::TestWithParam<Algorithm> {};

TEST_P(PipelineTest, RoundTripsAroundChunkBoundariesWithManyThreadCounts) {
  for (std::size_t chunk : {1ul, 7ul, 4096ul, 65536ul}) {
    for (std::size_t n : {0ul, 1ul, chunk - 1, chunk, chunk + 1, 3 * chunk, 3 * chunk + 1,
                          5 * chunk - 1}) {
      if (chunk == 1 && n > 64) continue;
      Bytes raw = testing::TextBytes(n, static_cast<unsigned>(n + chunk));
      for (std::size_t threads : {1ul, 2ul, 4ul}) {
        PipelineOptions opt;
        opt.algorithm = GetParam();
        opt.level = 1;
        opt.chunk_size = chunk;
        opt.threads = threads;
        Bytes packed = CompressAll(raw, opt, /*max_read=*/997);
        ASSERT_FALSE(packed.empty()) << "an empty input still gives one frame";
        auto back = DecompressAll(packed, threads, /*max_read=*/1231);
        ASSERT_TRUE(back.ok()) << "chunk=" << chunk << " n=" << n << ": " << back.error().message();
        ASSERT_EQ(*back, raw) << "chunk=" << chunk << " n=" << n << " threads=" << threads;
      }
    }
  }
}

TEST_P(PipelineTest, RoundTripsRandomZerosAndLargeChunks) {
  for (const Bytes& raw : {testing::RandomBytes(5 << 20), Bytes(6 << 20),
                           testing::TextBytes((3 << 20) + 17)}) {
    for (std::size_t chunk : {std::size_t{1} << 20, std::size_t{4} << 20, std::size_t{20} << 20}) {
      PipelineOptions opt;
      opt.algorithm = GetParam();
      opt.level = DefaultLevel(GetParam());
      opt.chunk_size = chunk;
      Bytes packed = CompressAll(raw, opt);
      auto back = DecompressAll(packed);
      ASSERT_TRUE(back.ok()) << back.error().message();
      ASSERT_EQ(*back, raw);
    }
  }
}

TEST_P(PipelineTest, EmitsChunksInOrderWithOffsetsAndHashes) {
  Bytes raw = testing::TextBytes(1'000'003);
  PipelineOptions opt;
  opt.algorithm = GetParam();
  opt.chunk_size = 65536;
  opt.threads = 3;
  MemSource src(raw);
  auto dec = MakeDecoder(GetParam());
  std::uint64_t expect_index = 0, expect_offset = 0;
  Status st = CompressChunks(src, opt, [&](const Chunk& c) -> Status {
    EXPECT_EQ(c.index, expect_index);
    EXPECT_EQ(c.raw_offset, expect_offset);
    std::span<const std::byte> want(raw.data() + c.raw_offset, c.raw_len);
    EXPECT_TRUE(std::equal(c.raw.begin(), c.raw.end(), want.begin(), want.end()));
    EXPECT_EQ(c.raw_xxh3, Xxh3_64(want));
    Bytes out(c.raw_len);
    Status d = (*dec)->DecompressChunk(c.payload, out);
    EXPECT_TRUE(d.ok()) << d.error().message();
    EXPECT_TRUE(std::equal(out.begin(), out.end(), want.begin(), want.end()));
    ++expect_index;
    expect_offset += c.raw_len;
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(expect_offset, raw.size());
  EXPECT_EQ(expect_index, (raw.size() + 65535) / 65536);
}

INSTANTIATE_TEST_SUITE_P(All, PipelineTest, ::testing::Values(Algorithm::kZstd, Algorithm::kGzip),
                         [](const auto& info) { return std::string(AlgorithmName(info.param)); });

TEST(Pipeline, MemoryStaysBoundedByInFlightOverALongInput) {
  Bytes raw = testing::TextBytes(32 << 20);  // 512 chunks of 64 KiB
  PipelineOptions opt;
  opt.chunk_size = 65536;
  opt.level = 1;
  opt.threads = 2;
  opt.in_flight = 4;
  MemSource src(raw);
  PipelineStats stats;
  std::uint64_t emitted = 0;
  Status st = CompressChunks(src, opt, [&](const Chunk& c) -> Status {
    // The reader never runs more than in_flight chunks ahead of the emitter.
    EXPECT_LE(src.position(), (c.index + 1 + opt.in_flight) * opt.chunk_size);
    ++emitted;
    return Status::Ok();
  }, &stats);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(emitted, 512u);
  EXPECT_EQ(stats.chunks, 512u);
  EXPECT_EQ(stats.raw_bytes, raw.size());
  EXPECT_EQ(stats.in_flight, 4u);
  EXPECT_LE(stats.buffers_allocated, 4u);
  EXPECT_GE(stats.buffers_allocated, 2u);
}

TEST(Pipeline, SkipChunksResumesAtTheRightOffset) {
  Bytes raw = testing::TextBytes(10 * 4096 + 5);
  PipelineOptions opt;
  opt.chunk_size = 4096;
  opt.skip_chunks = 7;
  MemSource src(raw);
  std::vector<std::uint64_t> indexes;
  ASSERT_TRUE(CompressChunks(src, opt, [&](const Chunk& c) -> Status {
    indexes.push_back(c.index);
    EXPECT_EQ(c.raw_offset, c.index * 4096);
    return Status::Ok();
  }).ok());
  EXPECT_EQ(indexes, (std::vector<std::uint64_t>{7, 8, 9, 10}));
  opt.skip_chunks = 50;  // beyond the end: nothing
  MemSource src2(raw);
  int n = 0;
  ASSERT_TRUE(CompressChunks(src2, opt, [&](const Chunk&) { ++n; return Status::Ok(); }).ok());
  EXPECT_EQ(n, 0);
}

TEST(Pipeline, PropagatesReadEmitAndWriteErrors) {
  Bytes raw = testing::TextBytes(1 << 20);
  PipelineOptions opt;
  opt.chunk_size = 4096;
  {
    MemSource src(raw, SIZE_MAX, 100000);
    Status st = CompressChunks(src, opt, [](const Chunk&) { return Status::Ok(); });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kIo);
  }
  {
    MemSource src(raw);
    int calls = 0;
    Status st = CompressChunks(src, opt, [&](const Chunk&) -> Status {
      if (++calls == 5) return Error(ErrorCode::kNetwork, "peer went away");
      return Status::Ok();
    });
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().message(), "peer went away");
    EXPECT_EQ(calls, 5);
  }
  {
    MemSource src(raw);
    MemSink sink(/*fail_after=*/1000);
    Status st = CompressStream(src, sink, opt);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kNoSpace);
  }
  {
    Bytes packed = CompressAll(raw, opt);
    MemSource src(packed);
    MemSink sink(/*fail_after=*/100000);
    Status st = DecompressStream(src, sink, 2);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.error().code(), ErrorCode::kNoSpace);
  }
}

TEST(Pipeline, RejectsBadOptions) {
  Bytes raw(10);
  MemSource src(raw);
  PipelineOptions opt;
  opt.chunk_size = 0;
  EXPECT_EQ(CompressChunks(src, opt, [](const Chunk&) { return Status::Ok(); }).error().code(),
            ErrorCode::kInvalidArgument);
  opt.chunk_size = kMaxChunkSize + 1;
  EXPECT_FALSE(CompressChunks(src, opt, [](const Chunk&) { return Status::Ok(); }).ok());
  opt.chunk_size = 4096;
  opt.level = 42;
  EXPECT_FALSE(CompressChunks(src, opt, [](const Chunk&) { return Status::Ok(); }).ok());
}

// ---- decoding strictness ----

class DecodeTest : public ::testing::TestWithParam<Algorithm> {
 protected:
  Bytes raw_ = testing::TextBytes(200000);
  Bytes Pack() {
    PipelineOptions opt;
    opt.algorithm = GetParam();
    opt.chunk_size = 16384;
    return CompressAll(raw_, opt);
  }
};

TEST_P(DecodeTest, RejectsTruncationAtAnyPoint) {
  Bytes packed = Pack();
  for (std::size_t cut = 1; cut < packed.size(); cut += 1 + packed.size() / 300) {
    Bytes part(packed.begin(), packed.begin() + cut);
    auto r = DecompressAll(part);
    ASSERT_FALSE(r.ok()) << "cut at " << cut << " of " << packed.size();
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << r.error().message();
  }
}

TEST_P(DecodeTest, RejectsTrailingGarbage) {
  Bytes packed = Pack();
  for (const Bytes& tail : {Bytes{std::byte{0}}, Bytes(100), testing::TextBytes(50),
                            Bytes{std::byte{0x1f}}, Bytes{std::byte{0x28}, std::byte{0xb5}}}) {
    auto r = DecompressAll(Concat({packed, tail}));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt) << r.error().message();
  }
}

TEST_P(DecodeTest, NeverReturnsWrongBytesOnBitFlips) {
  Bytes packed = Pack();
  int detected = 0, total = 0;
  for (std::size_t i = 0; i < packed.size(); i += 1 + packed.size() / 400) {
    Bytes bad = packed;
    bad[i] ^= std::byte{0x10};
    auto r = DecompressAll(bad);
    ++total;
    if (!r.ok()) {
      ++detected;
    } else {
      EXPECT_EQ(*r, raw_) << "flip at " << i << " decoded to different bytes";
    }
  }
  EXPECT_GT(detected, total * 9 / 10);
}

TEST_P(DecodeTest, RejectsInputThatIsNotCompressed) {
  for (const Bytes& in : {Bytes{}, testing::TextBytes(100000), testing::RandomBytes(3), Bytes(1000)}) {
    auto r = DecompressAll(in);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  }
}

INSTANTIATE_TEST_SUITE_P(All, DecodeTest, ::testing::Values(Algorithm::kZstd, Algorithm::kGzip),
                         [](const auto& info) { return std::string(AlgorithmName(info.param)); });

// ---- foreign streams ----

// A zstd stream written the way `zstd` does from a pipe: no content size.
Bytes ZstdStreamed(const Bytes& raw, bool checksum) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  Bytes out(ZSTD_compressBound(raw.size()) + 1024);
  ZSTD_inBuffer in{raw.data(), raw.size(), 0};
  ZSTD_outBuffer o{out.data(), out.size(), 0};
  // Feed in two pieces so the frame cannot know its size.
  in.size = raw.size() / 2;
  ZSTD_compressStream2(c, &o, &in, ZSTD_e_continue);
  in.size = raw.size();
  while (ZSTD_compressStream2(c, &o, &in, ZSTD_e_end) != 0) {
  }
  ZSTD_freeCCtx(c);
  out.resize(o.pos);
  EXPECT_EQ(ZSTD_getFrameContentSize(out.data(), out.size()), ZSTD_CONTENTSIZE_UNKNOWN);
  return out;
}

// A stock gzip member (zlib, no extra field), as gzip/pigz write.
Bytes ZlibGzip(const Bytes& raw) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&zs, raw.size()) + 64);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(raw.data()));
  zs.avail_in = static_cast<uInt>(raw.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

TEST(Foreign, ZstdFramesWithoutContentSizeOrChecksumMixedWithOurs) {
  Bytes a = testing::TextBytes(3 << 20, 1), b = testing::RandomBytes(100000, 2),
        c = testing::TextBytes(500000, 3);
  PipelineOptions opt;
  opt.chunk_size = 65536;
  Bytes packed = Concat({ZstdStreamed(a, true), CompressAll(b, opt), ZstdStreamed(c, false),
                         CompressAll(a, opt)});
  for (std::size_t threads : {1ul, 2ul, 3ul}) {
    auto r = DecompressAll(packed, threads, 7777);
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(*r, Concat({a, b, c, a}));
  }
  // A corrupt streamed frame is still caught by its checksum.
  Bytes bad = ZstdStreamed(a, true);
  bad[bad.size() - 2] ^= std::byte{1};
  auto r = DecompressAll(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  // And a truncated one.
  Bytes cut(bad.begin(), bad.begin() + bad.size() / 2);
  EXPECT_EQ(DecompressAll(cut).error().code(), ErrorCode::kCorrupt);
}

TEST(Foreign, StockGzipMembersMixedWithOurs) {
  Bytes a = testing::TextBytes(2 << 20, 4), b = testing::TextBytes(70000, 5);
  PipelineOptions opt;
  opt.algorithm = Algorithm::kGzip;
  opt.chunk_size = 65536;
  Bytes packed = Concat({ZlibGzip(a), CompressAll(b, opt), ZlibGzip(b), ZlibGzip({})});
  auto r = DecompressAll(packed, 2, 5000);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(*r, Concat({a, b, b}));

  Bytes single = ZlibGzip(a);
  Bytes crc_bad = single;
  crc_bad[crc_bad.size() - 6] ^= std::byte{1};  // CRC32
  EXPECT_EQ(DecompressAll(crc_bad).error().code(), ErrorCode::kCorrupt);
  Bytes size_bad = single;
  size_bad[size_bad.size() - 1] ^= std::byte{1};  // ISIZE
  EXPECT_EQ(DecompressAll(size_bad).error().code(), ErrorCode::kCorrupt);
  Bytes cut(single.begin(), single.end() - 3);
  EXPECT_EQ(DecompressAll(cut).error().code(), ErrorCode::kCorrupt);
  EXPECT_EQ(DecompressAll(Concat({single, Bytes(3)})).error().code(), ErrorCode::kCorrupt);
}

}  // namespace
}  // namespace walferry::compress
