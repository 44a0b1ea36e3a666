// The fan-out backlog store (pg/backlog.h): entries survive as whole files,
// oldest first, bounded, idempotent; a torn entry or a crash's temp file is
// repaired or ignored, never fatal and never loses the name.
#include "pg/backlog.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace walferry::pg {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSeg1 = "000000010000000000000001";
constexpr const char* kSeg2 = "000000010000000000000002";
constexpr const char* kSeg3 = "000000010000000000000003";

class BacklogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-backlog-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dir_ = base_ + "/a/backlog";
  }
  void TearDown() override { fs::remove_all(base_); }
  std::string TargetDir(const std::string& t) { return dir_ + "/" + TargetKey(t); }
  std::string base_, dir_;
};

TEST_F(BacklogTest, CreatesDirectoryPrivate) {
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b.ok()) << b.error().message();
  struct stat st{};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(BacklogTest, RefusesDirectoryOpenToOthers) {
  fs::create_directories(dir_);
  ::chmod(dir_.c_str(), 0755);
  auto b = Backlog::Open(dir_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), ErrorCode::kRefused);
}

TEST_F(BacklogTest, RefusesSymlink) {
  fs::create_directories(base_ + "/real");
  ::chmod((base_ + "/real").c_str(), 0700);
  fs::create_directories(base_ + "/a");
  fs::create_directory_symlink(base_ + "/real", dir_);
  auto b = Backlog::Open(dir_);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code(), ErrorCode::kRefused);
}

TEST_F(BacklogTest, AddListRemoveOldestFirst) {
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Add("h:1", kSeg2, "/pg/pg_wal/2").ok());
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/pg/pg_wal/1").ok());
  ASSERT_TRUE(b->Add("h:2", kSeg3, "/pg/pg_wal/3").ok());
  auto e = b->Entries("h:1");
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->size(), 2u);
  EXPECT_EQ((*e)[0].name, kSeg2);  // the order they were missed in
  EXPECT_EQ((*e)[0].source, "/pg/pg_wal/2");
  EXPECT_EQ((*e)[1].name, kSeg1);
  EXPECT_FALSE((*e)[0].repaired);
  ASSERT_TRUE(b->Remove((*e)[0]).ok());
  e = b->Entries("h:1");
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].name, kSeg1);
  auto targets = b->Targets();
  ASSERT_TRUE(targets.ok());
  EXPECT_EQ(*targets, (std::vector<std::string>{"h:1", "h:2"}));
  // A new Backlog on the same directory sees the same (it is all on disk).
  auto again = Backlog::Open(dir_);
  EXPECT_EQ(again->Entries("h:2")->size(), 1u);
  EXPECT_TRUE(again->Entries("never:1")->empty());
}

TEST_F(BacklogTest, AddIsIdempotent) {
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  EXPECT_EQ(b->Entries("h:1")->size(), 1u);
}

TEST_F(BacklogTest, FullIsALoudNoSpaceAndKeepsWhatItHas) {
  auto b = Backlog::Open(dir_, 2);
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  ASSERT_TRUE(b->Add("h:1", kSeg2, "/x/2").ok());
  Status st = b->Add("h:1", kSeg3, "/x/3");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNoSpace);
  EXPECT_NE(st.error().message().find("full"), std::string::npos) << st.error().message();
  EXPECT_EQ(b->Entries("h:1")->size(), 2u);
  // Another target has its own bound.
  EXPECT_TRUE(b->Add("h:2", kSeg3, "/x/3").ok());
}

TEST_F(BacklogTest, RefusesBadNamesAndRelativeSources) {
  auto b = Backlog::Open(dir_);
  EXPECT_FALSE(b->Add("h:1", "../x", "/x").ok());
  EXPECT_FALSE(b->Add("h:1", kSeg1, "relative/path").ok());
  EXPECT_FALSE(b->Add("h:1", kSeg1, "/a\nb").ok());
  EXPECT_FALSE(b->Add("h\n1", kSeg1, "/a").ok());
  EXPECT_TRUE(b->Entries("h:1")->empty());
}

TEST_F(BacklogTest, TornEntryIsRepairedNotFatal) {
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  ASSERT_TRUE(b->Add("h:1", kSeg2, "/x/2").ok());
  auto e = b->Entries("h:1");
  ASSERT_EQ(e->size(), 2u);
  const std::string torn = TargetDir("h:1") + "/" + (*e)[0].file;
  // A torn write: the first bytes only, then a zeroed tail.
  std::string text = FormatBacklogEntry((*e)[0]);
  {
    std::ofstream f(torn, std::ios::trunc | std::ios::binary);
    f << text.substr(0, 20) << std::string(30, '\0');
  }
  auto r = b->Entries("h:1");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].name, kSeg1);  // the name comes from the file name
  EXPECT_TRUE((*r)[0].repaired);
  EXPECT_EQ((*r)[0].source, "");  // looked up again in pg_wal
  EXPECT_EQ((*r)[1].source, "/x/2");
  // Rewritten well-formed: the next scan parses it.
  auto again = b->Entries("h:1");
  EXPECT_FALSE((*again)[0].repaired);
  EXPECT_TRUE(b->Remove((*again)[0]).ok());
}

TEST_F(BacklogTest, EmptyEntryFileIsRepaired) {
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  auto e = b->Entries("h:1");
  ::truncate((TargetDir("h:1") + "/" + (*e)[0].file).c_str(), 0);
  auto r = b->Entries("h:1");
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, kSeg1);
}

TEST_F(BacklogTest, CrashTempFilesAndStrangersAreIgnored) {
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  const std::string d = TargetDir("h:1");
  std::ofstream(d + "/.00000000000000000001-" + std::string(kSeg2) + ".abc.wftmp") << "walferry-backlog 1\n";
  std::ofstream(d + "/notes.txt") << "hello";
  std::ofstream(d + "/00000000000000000009-..") << "x";
  auto r = b->Entries("h:1");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].name, kSeg1);
  EXPECT_FALSE(fs::exists(d + "/.00000000000000000001-" + std::string(kSeg2) + ".abc.wftmp"));
}

TEST_F(BacklogTest, StateRecordsLastAnswer) {
  auto b = Backlog::Open(dir_);
  EXPECT_FALSE(b->State("h:1").has_value());
  b->RecordResult("h:1", false, "connection refused\nsecond line");
  auto s = b->State("h:1");
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->reachable());
  EXPECT_EQ(s->last_error, "connection refused second line");
  b->RecordResult("h:1", true, "");
  EXPECT_TRUE(b->State("h:1")->reachable());
}

TEST_F(BacklogTest, ReadingCreatesAndRepairsNothing) {
  auto missing = Backlog::OpenForReading(dir_);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_));
  auto b = Backlog::Open(dir_);
  ASSERT_TRUE(b->Add("h:1", kSeg1, "/x/1").ok());
  auto e = b->Entries("h:1");
  const std::string torn = TargetDir("h:1") + "/" + (*e)[0].file;
  ::truncate(torn.c_str(), 0);
  auto r = Backlog::OpenForReading(dir_);
  ASSERT_TRUE(r.ok());
  auto seen = r->Entries("h:1");
  ASSERT_EQ(seen->size(), 1u);
  EXPECT_TRUE((*seen)[0].repaired);
  EXPECT_EQ(fs::file_size(torn), 0u);  // left for push to repair
  EXPECT_FALSE(r->Add("h:1", kSeg2, "/x/2").ok());
  EXPECT_FALSE(r->Remove((*seen)[0]).ok());
  EXPECT_EQ(*r->Targets(), std::vector<std::string>{"h:1"});
}

TEST(BacklogFormat, RoundTripAndRejections) {
  BacklogEntry e;
  e.target = "standby:7420";
  e.name = kSeg1;
  e.source = "/var/lib/postgresql/15/main/pg_wal/000000010000000000000001";
  e.added_ns = 1733050000123456789;
  std::string text = FormatBacklogEntry(e);
  auto p = ParseBacklogEntry(text);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->target, e.target);
  EXPECT_EQ(p->name, e.name);
  EXPECT_EQ(p->source, e.source);
  EXPECT_EQ(p->added_ns, e.added_ns);
  for (std::size_t cut = 0; cut < text.size(); ++cut) {
    EXPECT_FALSE(ParseBacklogEntry(text.substr(0, cut)).has_value()) << cut;
  }
  std::string flipped = text;
  flipped[30] ^= 1;
  EXPECT_FALSE(ParseBacklogEntry(flipped).has_value());
  EXPECT_FALSE(ParseBacklogEntry(text + "x").has_value());
}

TEST(BacklogFormat, TargetKeysDistinctAndSafe) {
  EXPECT_NE(TargetKey("a:1"), TargetKey("a_1"));
  EXPECT_EQ(TargetKey("../x").find('/'), std::string::npos);
  EXPECT_NE(TargetKey("../x")[0], '.');
}

TEST(BacklogFormat, DefaultDirIsBesideTlsDir) {
  EXPECT_EQ(DefaultBacklogDir("/etc/walferry/tls"), "/etc/walferry/walferry-backlog");
  EXPECT_EQ(DefaultBacklogDir("/etc/walferry/tls/"), "/etc/walferry/walferry-backlog");
}

}  // namespace
}  // namespace walferry::pg
