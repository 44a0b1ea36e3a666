// PrefetchWorkerNeeded: a worker starts only when the read-ahead window runs
// low and no other worker holds the cache directory's lock.
#include "pg/prefetch_window.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "walfmt/wal_names.h"

namespace walferry::pg {
namespace {

namespace fs = std::filesystem;

class PrefetchWindow : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wf-window-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  static std::string Seg(std::uint64_t n) {
    return walfmt::FormatSegmentName(walfmt::FromSegmentNumber(1, n, 256));
  }
  void Put(std::uint64_t n) { std::ofstream(dir_ / Seg(n)) << "x"; }
  bool Needed(std::uint64_t n, int count = 8) { return PrefetchWorkerNeeded(dir_.string(), Seg(n), 16u << 20, count); }
  fs::path dir_;
};

TEST_F(PrefetchWindow, StartsOnlyWhenTheFirstHalfOfTheWindowLacksASegment) {
  EXPECT_TRUE(Needed(10));  // empty cache
  for (std::uint64_t n = 11; n <= 14; ++n) Put(n);
  EXPECT_FALSE(Needed(10));  // 11..14 (ceil(8/2) ahead) all there
  EXPECT_TRUE(Needed(11));   // 15 missing
  EXPECT_FALSE(Needed(10, 1));
  EXPECT_TRUE(Needed(14, 1));
  // Across the 0xFF -> next log id step.
  for (std::uint64_t n = 256; n <= 259; ++n) Put(n);
  EXPECT_FALSE(Needed(255));
  EXPECT_TRUE(Needed(256));
}

TEST_F(PrefetchWindow, NotWhileAWorkerHoldsTheLock) {
  const std::string lock = (dir_ / ".lock").string();
  int fd = ::open(lock.c_str(), O_RDWR | O_CREAT, 0600);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(Needed(10));  // lock file there but free
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  // flock locks belong to the open file description: a second open conflicts.
  EXPECT_FALSE(Needed(10));
  ::flock(fd, LOCK_UN);
  EXPECT_TRUE(Needed(10));
  ::close(fd);
}

TEST_F(PrefetchWindow, OnDoubtStartsOne) {
  EXPECT_TRUE(PrefetchWorkerNeeded(dir_.string(), "00000001.history", 16u << 20, 8));
  EXPECT_TRUE(PrefetchWorkerNeeded(dir_.string(), Seg(3), 12345, 8));  // not a valid segment size
  EXPECT_TRUE(PrefetchWorkerNeeded((dir_ / "absent").string(), Seg(3), 16u << 20, 8));
}

}  // namespace
}  // namespace walferry::pg
