// Timeline history files: parsed as PostgreSQL's readTimeLineHistory reads
// them, and refused by the receiver when PostgreSQL could not read them.
#include <gtest/gtest.h>

#include "archive/archive.h"
#include "tests/support/archive_test_util.h"
#include "core/hash.h"

namespace walferry::archive {
namespace {

TEST(ArchiveHistory, NameTimeline) {
  EXPECT_EQ(HistoryNameTimeline("00000002.history"), 2u);
  EXPECT_EQ(HistoryNameTimeline("0000001A.history"), 26u);
  EXPECT_EQ(HistoryNameTimeline("0000001a.history"), 0u);
  EXPECT_EQ(HistoryNameTimeline("0000002.history"), 0u);
  EXPECT_EQ(HistoryNameTimeline("000000020000000000000003"), 0u);
  EXPECT_EQ(HistoryNameTimeline("00000002.history.zst"), 0u);
}

TEST(ArchiveHistory, WhatPostgreSQLWrites) {
  // Timeline 3 after 1 -> 2 -> 3, as writeTimeLineHistory writes it (the
  // parent's file, an extra newline, the new line).
  const std::string text =
      "1\t0/40000A0\tno recovery target specified\n\n2\t0/7000000\tno recovery target specified\n";
  auto h = ParseTimelineHistory(text, 3);
  ASSERT_TRUE(h.ok()) << h.error().message();
  ASSERT_EQ(h->size(), 2u);
  EXPECT_EQ((*h)[0].parent, 1u);
  EXPECT_EQ((*h)[0].end, 0x40000A0u);
  EXPECT_EQ((*h)[1].parent, 2u);
  EXPECT_EQ((*h)[1].end, 0x7000000u);
  // Comments, blanks, a reason with tabs, no final newline, an upper LSN half.
  auto c = ParseTimelineHistory("# made by hand\n   \n1\t1A/FF000028\tbefore 2026-11-30 12:00\textra", 2);
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ((*c)[0].end, (0x1Aull << 32) | 0xFF000028u);
}

TEST(ArchiveHistory, RefusesWhatPostgreSQLCannotRead) {
  struct Case {
    const char* text;
    std::uint32_t tli;
  } cases[] = {
      {"", 2},                                         // no parent
      {"# only a comment\n", 2},                       // no parent
      {"x\t0/1\treason\n", 2},                         // not a number
      {"1\treason\n", 2},                              // no switch point
      {"1\t0-1\treason\n", 2},                         // bad switch point
      {"1\t0/\treason\n", 2},                          // half a switch point
      {"1\t100000000/0\treason\n", 2},                 // hex half too large
      {"2\t0/1\tr\n1\t0/2\tr\n", 3},                   // decreasing
      {"1\t0/1\tr\n1\t0/2\tr\n", 3},                   // repeated
      {"2\t0/1\tr\n", 2},                              // parent not below the file's timeline
      {"3\t0/1\tr\n", 2},                              // parent above
      {"1\t0/1\tr\n", 1},                              // timeline 1 has no history
      {"99999999999\t0/1\tr\n", 2},                    // out of range
  };
  for (const auto& c : cases) {
    auto h = ParseTimelineHistory(c.text, c.tli);
    ASSERT_FALSE(h.ok()) << c.text;
    EXPECT_EQ(h.error().code(), ErrorCode::kCorrupt) << c.text;
  }
  std::string nul = "1\t0/1\tr\n";
  nul.push_back('\0');
  EXPECT_FALSE(ParseTimelineHistory(nul, 2).ok());
  EXPECT_FALSE(ParseTimelineHistory(std::string(kMaxHistoryBytes + 1, '#'), 2).ok());
}

class ArchiveHistoryIncoming : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("history"); }
  void TearDown() override { testing::RemoveTree(dir_); }
  Result<CommitOutcome> Send(Archive& a, const std::string& name, const std::string& text, int id) {
    TransferSpec s;
    s.cluster = "main";
    s.name = name;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%032x", id);
    s.transfer_id = buf;
    s.raw_size = static_cast<std::int64_t>(text.size());
    WF_ASSIGN(auto in, a.Begin(s));
    std::span<const std::byte> raw(reinterpret_cast<const std::byte*>(text.data()), text.size());
    if (!raw.empty()) WF_TRY(in->Append(0, raw, compress::Algorithm::kRaw, raw));
    return in->Commit(raw.size(), Xxh3_128(raw));
  }
  std::string dir_;
};

// Pinned by name and content: identical accepted, different refused, garbage refused.
TEST_F(ArchiveHistoryIncoming, PinnedByNameAndContent) {
  for (auto format : {StoreFormat::kRaw, StoreFormat::kZstd}) {
    const std::string root = dir_ + (format == StoreFormat::kRaw ? "/raw" : "/zst");
    auto a = Archive::Open(root, format);
    ASSERT_TRUE(a.ok());
    const std::string h2 = "1\t0/40000A0\tno recovery target specified\n";
    auto r = Send(**a, "00000002.history", h2, 1);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(*r, CommitOutcome::kPlaced);
    r = Send(**a, "00000002.history", h2, 2);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, CommitOutcome::kAlreadyIdentical);
    r = Send(**a, "00000002.history", "1\t0/50000A0\tno recovery target specified\n", 3);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kExistsDifferent);
    EXPECT_NE(r.error().message().find("first difference at byte 4"), std::string::npos) << r.error().message();
    EXPECT_NE(r.error().message().find("two promotions chose timeline 00000002"), std::string::npos)
        << r.error().message();
    // Not a history PostgreSQL could read: refused, nothing stored.
    for (const char* garbage : {"", "hello\n", "3\t0/1\tr\n", "1\t0/1\tr\n0\t0/2\tr\n"}) {
      r = Send(**a, "00000003.history", garbage, 4);
      ASSERT_FALSE(r.ok()) << garbage;
      EXPECT_EQ(r.error().code(), ErrorCode::kRefused) << garbage;
      EXPECT_FALSE((*a)->Find("main", "00000003.history").ok());
    }
    // Other names ending in .history are not timeline histories: not parsed.
    r = Send(**a, "notes.history", "anything", 5);
    ASSERT_TRUE(r.ok()) << r.error().message();
  }
}

}  // namespace
}  // namespace walferry::archive
