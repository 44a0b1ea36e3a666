// WAL long page header parsing and the name cross-check, on real segments from
// initdb (16 MiB and --wal-segsize=64) and on synthesized headers.
#include <gtest/gtest.h>

#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"
#include "tests/support/archive_test_util.h"

namespace walferry::walfmt {
namespace {

namespace testing = ::walferry::archive::testing;

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
  // A page timeline lower than the name's: the first segment of a new timeline.
  EXPECT_TRUE(CheckWalName(*info, "000000020000000000000001").ok());
  WalPageCheck pages(*info, 1);
  EXPECT_TRUE(pages.Feed(seg).ok());  // every valid page of a real segment
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

// A segment of `pages` pages (1 MiB segments, 8 KiB pages) whose page i has
// timeline tlis[i] (0 = a zeroed page), segment number `segno`.
std::vector<std::byte> SynthSegment(std::uint64_t segno, const std::vector<std::uint32_t>& tlis,
                                    std::uint16_t first_info = 0x0002) {
  constexpr std::uint32_t kPage = 8192;
  std::vector<std::byte> seg(kMiB);
  for (std::size_t i = 0; i < tlis.size(); ++i) {
    if (tlis[i] == 0) continue;
    auto* p = seg.data() + i * kPage;
    auto put = [&](std::size_t off, std::uint64_t v, int n) {
      for (int b = 0; b < n; ++b) p[off + b] = static_cast<std::byte>((v >> (8 * b)) & 0xff);
    };
    put(0, 0xD110, 2);
    put(2, i == 0 ? first_info : 0x0001, 2);
    put(4, tlis[i], 4);
    put(8, segno * kMiB + i * kPage, 8);
    if (i == 0) {
      put(24, 42, 8);
      put(32, kMiB, 4);
      put(36, kPage, 4);
    }
  }
  return seg;
}

Status Walk(const std::vector<std::byte>& seg, std::uint32_t name_tli, std::size_t split = 0) {
  auto info = ParseWalHeader(seg);
  if (!info.ok()) return info.error();
  WalPageCheck check(*info, name_tli);
  if (split == 0) return check.Feed(seg);
  for (std::size_t off = 0; off < seg.size(); off += split) {
    WF_TRY(check.Feed(std::span(seg).subspan(off, std::min(split, seg.size() - off))));
  }
  return Status::Ok();
}

// Page timeline equal to, lower than and higher than the name's timeline, on
// the first page: PostgreSQL never lets page timelines go backwards, and a
// new timeline's first segment starts as a copy of its parent's last one.
TEST(ArchiveWalHeader, FirstPageTimelineNotAboveTheName) {
  for (std::uint32_t page_tli : {1u, 2u, 3u, 0x10u, 0xFFFFFFFEu}) {
    auto info = ParseWalHeader(SynthHeader(0xD110, page_tli, 3 * 16 * kMiB, 42, 16 * kMiB));
    ASSERT_TRUE(info.ok());
    for (std::uint32_t name_tli : {1u, 2u, 3u, 0x10u, 0xFFFFFFFFu}) {
      char name[32];
      std::snprintf(name, sizeof name, "%08X0000000000000003", name_tli);
      auto st = CheckWalName(*info, name);
      EXPECT_EQ(st.ok(), page_tli <= name_tli) << page_tli << " under " << name;
      if (!st.ok()) {
        EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
        EXPECT_NE(st.error().message().find("timeline " + std::to_string(page_tli)), std::string::npos)
            << st.error().message();
      }
    }
  }
  // Lower timeline does not excuse another segment number.
  auto info = ParseWalHeader(SynthHeader(0xD110, 1, 3 * 16 * kMiB, 42, 16 * kMiB));
  EXPECT_FALSE(CheckWalName(*info, "000000020000000000000004").ok());
  EXPECT_FALSE(CheckWalName(*info, "000000020000000000000002").ok());
}

// What PostgreSQL writes at a promotion in the middle of segment 3: the new
// timeline's 000000020000000000000003 carries timeline 1 on the pages copied
// from the old timeline, then timeline 2.
TEST(ArchiveWalHeader, LaterPagesMayRaiseTheTimelineUpToTheName) {
  std::vector<std::uint32_t> tlis(128, 2);
  for (int i = 0; i < 40; ++i) tlis[i] = 1;
  auto seg = SynthSegment(3, tlis);
  ASSERT_TRUE(CheckWalName(*ParseWalHeader(seg), "000000020000000000000003").ok());
  for (std::size_t split : {0, 1, 7, 16, 17, 8191, 8192, 8193, 100000}) {
    EXPECT_TRUE(Walk(seg, 2, split).ok()) << split;
    EXPECT_TRUE(Walk(seg, 3, split).ok()) << split;  // 1 -> 3 with 2 in between is fine too
    // Under timeline 1, the pages of timeline 2 are above the name: refused at page 40.
    auto st = Walk(seg, 1, split);
    ASSERT_FALSE(st.ok()) << split;
    EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt);
    EXPECT_NE(st.error().message().find("offset " + std::to_string(40 * 8192)), std::string::npos)
        << st.error().message();
  }
  // A first page of timeline 1, a later one of timeline 3, under name timeline 2.
  tlis[100] = 3;
  EXPECT_FALSE(Walk(SynthSegment(3, tlis), 2).ok());
}

TEST(ArchiveWalHeader, LaterPagesNeverGoBackwards) {
  std::vector<std::uint32_t> tlis(128, 2);
  tlis[64] = 1;  // a page of the parent timeline after pages of the child
  auto st = Walk(SynthSegment(3, tlis), 2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("timeline 1 after 2"), std::string::npos) << st.error().message();
  // The first page already on timeline 2, a later page back on 1.
  tlis.assign(128, 2);
  tlis[1] = 1;
  EXPECT_FALSE(Walk(SynthSegment(3, tlis), 2).ok());
}

TEST(ArchiveWalHeader, PageWalkStopsWhereValidWalEnds) {
  // A zeroed tail, and a recycled tail (pages of an older segment): whatever
  // they say is not WAL of this segment, as PostgreSQL's reader decides.
  std::vector<std::uint32_t> tlis(128, 1);
  for (int i = 50; i < 128; ++i) tlis[i] = 0;
  tlis[90] = 7;  // would be "above the name", but follows a zero page
  auto seg = SynthSegment(3, tlis);
  EXPECT_TRUE(Walk(seg, 1).ok());
  tlis.assign(128, 1);
  auto recycled = SynthSegment(3, tlis);
  auto old = SynthSegment(1, std::vector<std::uint32_t>(128, 9));
  std::copy(old.begin() + 60 * 8192, old.end(), recycled.begin() + 60 * 8192);
  EXPECT_TRUE(Walk(recycled, 1).ok());
  // XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x0008) is a valid flag, on any page.
  auto overwrite = SynthSegment(3, std::vector<std::uint32_t>(128, 1), 0x000A);
  EXPECT_TRUE(ParseWalHeader(overwrite).ok());
  EXPECT_TRUE(Walk(overwrite, 1).ok());
}

TEST(ArchiveWalHeader, SegmentNameTimeline) {
  EXPECT_EQ(SegmentNameTimeline("000000020000000000000003"), 2u);
  EXPECT_EQ(SegmentNameTimeline("FFFFFFFF0000000000000003"), 0xFFFFFFFFu);
  EXPECT_EQ(SegmentNameTimeline("00000002.history"), 0u);
  EXPECT_EQ(SegmentNameTimeline("000000020000000000000003.partial"), 0u);
}

}  // namespace
}  // namespace walferry::walfmt
