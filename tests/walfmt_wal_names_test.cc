// WAL names: cleanup selection (pg_archivecleanup's rule), next segments and
// holes in the archive, with 16 MiB and 64 MiB segments.
#include "walfmt/wal_names.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace walferry::walfmt {
namespace {

constexpr std::uint64_t k16 = 256;  // segments per log id at 16 MiB
constexpr std::uint64_t k64 = 64;

TEST(WalNames, ParseAndFormat) {
  auto s = ParseSegmentName("0000000200000003000000FE");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->timeline, 2u);
  EXPECT_EQ(s->log, 3u);
  EXPECT_EQ(s->seg, 0xFEu);
  EXPECT_EQ(FormatSegmentName(*s), "0000000200000003000000FE");
  EXPECT_FALSE(ParseSegmentName("0000000200000003000000fe"));
  EXPECT_FALSE(ParseSegmentName("00000002.history"));
  EXPECT_FALSE(ParseSegmentName("0000000200000003000000FE0"));
  EXPECT_EQ(*SegmentsPerLogId(16 << 20), k16);
  EXPECT_EQ(*SegmentsPerLogId(64 << 20), k64);
  EXPECT_EQ(*SegmentsPerLogId(1 << 30), 4u);
  EXPECT_FALSE(SegmentsPerLogId(3 << 20).ok());
  EXPECT_FALSE(SegmentsPerLogId(512 << 10).ok());
}

TEST(WalNames, NextSegmentsCrossLogIds) {
  auto n = NextSegmentNames(*ParseSegmentName("0000000100000000000000FE"), k16, 3);
  EXPECT_EQ(n, (std::vector<std::string>{"0000000100000000000000FF", "000000010000000100000000",
                                         "000000010000000100000001"}));
  auto m = NextSegmentNames(*ParseSegmentName("00000001000000000000003F"), k64, 1);
  EXPECT_EQ(m, std::vector<std::string>{"000000010000000100000000"});
}

TEST(WalNames, CleanupStrictlyOlderNeverHistoryNeverNewer) {
  std::vector<std::string> names = {
      "000000010000000000000001",
      "000000010000000000000002",
      "000000010000000000000002.00000028.backup",
      "000000010000000000000003",  // the restart point itself: kept
      "000000010000000000000004",
      "00000001.history",
      "00000002.history",
      "000000010000000000000002.partial",
      "000000020000000000000002",  // other timeline, older position: goes (ignores timeline)
      "000000020000000000000005",
      "000000010000000100000000",  // higher log id: newer
      "base.tar",
  };
  auto sel = SelectForCleanup(names, "000000010000000000000003");
  ASSERT_TRUE(sel.ok());
  std::sort(sel->begin(), sel->end());
  EXPECT_EQ(*sel, (std::vector<std::string>{
                      "000000010000000000000001", "000000010000000000000002",
                      "000000010000000000000002.00000028.backup",
                      "000000010000000000000002.partial", "000000020000000000000002"}));
  // A restart point given as a .partial/.backup name uses its 24-char prefix.
  auto sel2 = SelectForCleanup(names, "000000010000000000000002.00000028.backup");
  ASSERT_TRUE(sel2.ok());
  EXPECT_EQ(*sel2, std::vector<std::string>{"000000010000000000000001"});
  // Nothing older: nothing removed.
  EXPECT_TRUE(SelectForCleanup(names, "000000010000000000000000")->empty());
  EXPECT_FALSE(SelectForCleanup(names, "00000001.history").ok());
  EXPECT_FALSE(SelectForCleanup(names, "%r").ok());
  EXPECT_FALSE(SelectForCleanup(names, "").ok());
}

TEST(WalNames, GapsPerTimeline) {
  std::vector<std::string> names = {
      "000000010000000000000001", "000000010000000000000002", "000000010000000000000005",
      "0000000100000000000000FF", "000000010000000100000000",  // log id boundary: no gap
      "000000020000000000000005", "000000020000000000000006",  // timeline 2 starts later: fine
      "00000002.history",
  };
  auto gaps = FindGaps(names, k16);
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].timeline, 1u);
  EXPECT_EQ(gaps[0].first_missing, "000000010000000000000003");
  EXPECT_EQ(gaps[0].last_missing, "000000010000000000000004");
  EXPECT_EQ(gaps[0].count, 2u);
  EXPECT_EQ(gaps[1].first_missing, "000000010000000000000006");
  EXPECT_EQ(gaps[1].last_missing, "0000000100000000000000FE");
  EXPECT_EQ(gaps[1].count, 0xFEu - 6 + 1);
  EXPECT_TRUE(FindGaps({"00000001000000000000003F", "000000010000000100000000"}, k64).empty());
  EXPECT_EQ(FindGaps({"00000001000000000000003E", "000000010000000100000000"}, k64).size(), 1u);
  EXPECT_TRUE(FindGaps({}, k16).empty());
  EXPECT_EQ(NewestSegment(names), "000000020000000000000006");
}


// xlog_internal.h IsPartialXLogFileName: exactly a segment name + ".partial".
TEST(WalNames, PartialSegmentName) {
  EXPECT_EQ(PartialSegmentName("000000010000000000000009.partial"), "000000010000000000000009");
  for (const char* n : {"000000010000000000000009", "00000001000000000000000.partial",
                        "0000000100000000000000090.partial", "00000001000000000000000a.partial",
                        "000000010000000000000009.partial.gz", "000000010000000000000009.00000028.backup",
                        "00000002.history", ".partial", ""}) {
    EXPECT_EQ(PartialSegmentName(n), "") << n;
  }
}

}  // namespace
}  // namespace walferry::walfmt
