// WAL long page header parsing and the name cross-check, on real segments from
// initdb (16 MiB and --wal-segsize=64) and on synthesized headers.
#include <gtest/gtest.h>

#include "archive/archive.h"
#include "archive_test_util.h"

namespace walferry::archive {
namespace {

using testing::RealWalSegment;
using testing::SynthHeader;

constexpr std::uint32_t kMiB = 1u << 20;

TEST(ArchiveWalHeader, RealSegment16MiB) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  ASSERT_EQ(seg.size(), 16u * kMiB);
  auto info = ParseWalHeader(seg);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->segment_size, 16u * kMiB);
  EXPECT_EQ(info->page_size, 8192u);
  EXPECT_EQ(info->timeline, 1u);
  EXPECT_EQ(info->page_address, 16u * kMiB);  // segment 1
  EXPECT_EQ(WalMagicVersion(info->magic), 15);
  EXPECT_NE(info->system_id, 0u);
  EXPECT_TRUE(CheckWalName(*info, "000000010000000000000001").ok());
  auto wrong_seg = CheckWalName(*info, "000000010000000000000002");
  ASSERT_FALSE(wrong_seg.ok());
  EXPECT_EQ(wrong_seg.error().code(), ErrorCode::kRefused);
  EXPECT_NE(wrong_seg.error().message().find("000000010000000000000001"), std::string::npos)
      << wrong_seg.error().message();
  EXPECT_FALSE(CheckWalName(*info, "000000020000000000000001").ok());  // timeline
  EXPECT_FALSE(CheckWalName(*info, "000000010000000100000001").ok());  // log part
}

TEST(ArchiveWalHeader, RealSegment64MiB) {
  auto seg = RealWalSegment(64);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  ASSERT_EQ(seg.size(), 64u * kMiB);
  auto info = ParseWalHeader(seg);
  ASSERT_TRUE(info.ok()) << info.error().message();
  EXPECT_EQ(info->segment_size, 64u * kMiB);
  EXPECT_EQ(info->page_address, 64u * kMiB);
  EXPECT_TRUE(CheckWalName(*info, "000000010000000000000001").ok());
  EXPECT_FALSE(CheckWalName(*info, "000000010000000000000004").ok());  // 16 MiB arithmetic
}

TEST(ArchiveWalHeader, AllSupportedMagics) {
  const std::pair<std::uint16_t, int> magics[] = {
      {0xD097, 10}, {0xD098, 11}, {0xD101, 12}, {0xD106, 13},
      {0xD10D, 14}, {0xD110, 15}, {0xD113, 16}, {0xD116, 17}};
  for (auto [magic, version] : magics) {
    auto h = SynthHeader(magic, 1, 16 * kMiB, 42, 16 * kMiB);
    auto info = ParseWalHeader(h);
    ASSERT_TRUE(info.ok()) << std::hex << magic;
    EXPECT_EQ(WalMagicVersion(magic), version);
  }
  for (std::uint16_t bad : {0x0000, 0xD07E, 0xD093, 0xD114, 0xD115, 0xD118, 0xFFFF, 0x10D1}) {
    auto info = ParseWalHeader(SynthHeader(bad, 1, 0, 42, 16 * kMiB));
    ASSERT_FALSE(info.ok()) << std::hex << bad;
    EXPECT_EQ(info.error().code(), ErrorCode::kCorrupt);
    EXPECT_EQ(WalMagicVersion(bad), 0);
  }
}

TEST(ArchiveWalHeader, SegmentSizes) {
  for (std::uint32_t mb = 1; mb <= 1024; mb *= 2) {
    const std::uint32_t size = mb * kMiB;
    const std::uint64_t per_log = 0x100000000ull / size;
    // Segment number per_log + 3 -> name log 1, seg 3.
    const std::uint64_t segno = per_log + 3;
    auto info = ParseWalHeader(SynthHeader(0xD110, 5, segno * size, 42, size));
    ASSERT_TRUE(info.ok()) << mb << ": " << info.error().message();
    EXPECT_TRUE(CheckWalName(*info, "000000050000000100000003").ok()) << mb;
    EXPECT_FALSE(CheckWalName(*info, "000000050000000000000003").ok()) << mb;
  }
  for (std::uint32_t size : {0u, 512u * 1024u, 3u * kMiB, 2048u * kMiB, 16u * kMiB + 1u}) {
    auto info = ParseWalHeader(SynthHeader(0xD110, 1, 0, 42, size));
    EXPECT_FALSE(info.ok()) << size;
  }
}

TEST(ArchiveWalHeader, SegmentNumberArithmetic64MiB) {
  // 64 MiB: 64 segments per "log" id; segno 64 is log 1, seg 0 = address 4 GiB.
  const std::uint32_t size = 64 * kMiB;
  auto info = ParseWalHeader(SynthHeader(0xD113, 1, 0x100000000ull, 7, size));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(CheckWalName(*info, "000000010000000100000000").ok());
  EXPECT_FALSE(CheckWalName(*info, "000000010000000000000040").ok());  // seg >= 64: invalid name
  auto last = ParseWalHeader(SynthHeader(0xD113, 1, 63ull * size, 7, size));
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(CheckWalName(*last, "00000001000000000000003F").ok());
}

TEST(ArchiveWalHeader, RejectsMalformedHeaders) {
  auto good = SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB);
  ASSERT_TRUE(ParseWalHeader(good).ok());
  // Too short, at every length below the long header.
  for (std::size_t n = 0; n < 40; ++n) {
    auto r = ParseWalHeader(std::span(good.data(), n));
    ASSERT_FALSE(r.ok()) << n;
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  }
  EXPECT_TRUE(ParseWalHeader(std::span(good.data(), 40)).ok());
  // Short header only (not the first page of a segment), unknown flag bits.
  EXPECT_FALSE(ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB, 8192, 0x0000)).ok());
  EXPECT_FALSE(ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB, 8192, 0x0001)).ok());
  EXPECT_FALSE(ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB, 8192, 0x0012)).ok());
  EXPECT_TRUE(ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB, 8192, 0x0007)).ok());
  // Bad page sizes.
  for (std::uint32_t bs : {0u, 512u, 3000u, 131072u}) {
    EXPECT_FALSE(ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB, 8192, 2, bs)).ok()) << bs;
  }
  // Timeline 0; page address not at a segment start.
  EXPECT_FALSE(ParseWalHeader(SynthHeader(0xD110, 0, 16 * kMiB, 42, 16 * kMiB)).ok());
  EXPECT_FALSE(ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB + 8192, 42, 16 * kMiB)).ok());
}

TEST(ArchiveWalHeader, CheckWalNameRefusesNonSegmentNames) {
  auto info = ParseWalHeader(SynthHeader(0xD110, 1, 16 * kMiB, 42, 16 * kMiB));
  ASSERT_TRUE(info.ok());
  for (const char* n : {"", "00000001.history", "000000010000000000000001.partial",
                        "00000001000000000000000l", "base.tar"}) {
    auto st = CheckWalName(*info, n);
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
  }
}

}  // namespace
}  // namespace walferry::archive
