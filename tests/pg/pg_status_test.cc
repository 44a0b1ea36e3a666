// The status figures computed from PGDATA/pg_wal/archive_status (backlog,
// oldest age, written/archived in the window) and the --check thresholds.
#include "pg/status.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace walferry::pg {
namespace {

namespace fs = std::filesystem;

class ArchiveStatusDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-status-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/pg_wal/archive_status");
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A WAL file of `size` bytes and its status file with mtime `age` seconds ago.
  void Add(const std::string& wal, const std::string& suffix, double age, std::size_t size = 1000) {
    std::ofstream(dir_ + "/pg_wal/" + wal) << std::string(size, 'x');
    std::string st = dir_ + "/pg_wal/archive_status/" + wal + suffix;
    std::ofstream(st).flush();
    timespec times[2];
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec -= static_cast<time_t>(age);
    times[1] = times[0];
    ASSERT_EQ(::utimensat(AT_FDCWD, st.c_str(), times, 0), 0);
  }
  double Now() const { return static_cast<double>(::time(nullptr)); }
  std::string dir_;
};

TEST_F(ArchiveStatusDir, BacklogBytesAndOldestAge) {
  Add("000000010000000000000001", ".done", 400);
  Add("000000010000000000000002", ".done", 100);
  Add("000000010000000000000003", ".ready", 60, 2000);
  Add("000000010000000000000004", ".ready", 10, 3000);
  Add("00000002.history", ".ready", 5, 40);
  auto scan = ScanArchiveStatus(dir_, Now(), 300);
  ASSERT_TRUE(scan.ok()) << scan.error().message();
  EXPECT_EQ(scan->ready_count, 3);
  EXPECT_EQ(scan->ready_bytes, 5040);
  EXPECT_NEAR(scan->oldest_ready_age_s, 60, 3);
  // Written in the last 300 s: segments 2, 3, 4 (not 1, not the history file).
  EXPECT_EQ(scan->written_in_window, 3);
  // Archived in the window: .done files whose ctime (rename time) is recent: 1 and 2.
  EXPECT_EQ(scan->archived_in_window, 2);
}

TEST_F(ArchiveStatusDir, EmptyAndMissing) {
  auto scan = ScanArchiveStatus(dir_, Now(), 300);
  ASSERT_TRUE(scan.ok());
  EXPECT_EQ(scan->ready_count, 0);
  EXPECT_EQ(scan->oldest_ready_age_s, -1);
  EXPECT_FALSE(ScanArchiveStatus(dir_ + "/nope", Now(), 300).ok());
}

ServerStatus Healthy() {
  ServerStatus s;
  s.major = 15;
  s.ready_count = 1;
  s.ready_bytes = 16 << 20;
  s.oldest_ready_age_s = 2;
  s.last_archived_age_s = 3;
  return s;
}

TEST(StatusThresholds, HealthyPasses) {
  auto b = CheckThresholds(Healthy(), Thresholds{});
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(CheckSummary(Healthy(), b).rfind("ARCHIVE OK - backlog 1 segments (16.0 MiB)", 0), 0u);
}

TEST(StatusThresholds, EachLimitFires) {
  ServerStatus s = Healthy();
  s.ready_count = 17;
  EXPECT_EQ(CheckThresholds(s, Thresholds{}).size(), 1u);
  s = Healthy();
  s.oldest_ready_age_s = 301;
  EXPECT_EQ(CheckThresholds(s, Thresholds{}).size(), 1u);
  s = Healthy();
  s.last_archived_age_s = 901;
  EXPECT_EQ(CheckThresholds(s, Thresholds{}).size(), 1u);
  s.ready_count = 0;  // nothing waits: an old last success is fine (an idle server)
  s.oldest_ready_age_s = -1;
  EXPECT_TRUE(CheckThresholds(s, Thresholds{}).empty());
  s = Healthy();
  s.ready_count = 100;
  Thresholds off;
  off.max_backlog = -1;
  EXPECT_TRUE(CheckThresholds(s, off).empty());
}

TEST(StatusThresholds, CurrentFailureWithReason) {
  ServerStatus s = Healthy();
  s.last_failed_wal = "000000010000000000000009";
  s.last_failed_age_s = 1;  // newer than the last success (3 s ago)
  s.push_failure = PushFailure{0, "000000010000000000000009", "push 000000010000000000000009: receiver down"};
  auto b = CheckThresholds(s, Thresholds{});
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NE(b[0].find("receiver down"), std::string::npos) << b[0];
  EXPECT_EQ(CheckSummary(s, b).rfind("ARCHIVE CRITICAL - archiving 000000010000000000000009", 0), 0u);
  s.last_failed_age_s = 10;  // an old failure, archived since: not current
  EXPECT_TRUE(CheckThresholds(s, Thresholds{}).empty());
}

TEST(StatusThresholds, StandbyHasNoArchiveThresholds) {
  ServerStatus s;
  s.in_recovery = true;
  EXPECT_TRUE(CheckThresholds(s, Thresholds{}).empty());
}

}  // namespace
}  // namespace walferry::pg
