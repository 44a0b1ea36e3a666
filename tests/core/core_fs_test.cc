// core/fs: RenameDurable's one fallback, WriteAtomic under every injected
// fault and crash point (the final name holds the old content or the whole new
// content, never a part), and the archive's system_identifier recorded through
// a unique temp name and the fallback (issue 8 point 5).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "tests/support/archive_test_util.h"
#include "core/fs.h"
#include "tests/support/fault_fs.h"

namespace walferry {
namespace {

using faults::Fault;
using faults::FaultFs;
using faults::FaultKind;
using faults::FsOp;

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = archive::testing::MakeTempDir("fs");
    ASSERT_FALSE(dir_.empty());
    dirfd_ = UniqueFd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(dirfd_.valid());
  }
  void TearDown() override {
    dirfd_.Reset();
    archive::testing::RemoveTree(dir_);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }
  void Put(const std::string& name, const std::string& content) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << content;
  }
  Status Write(FileSystem& fs, const std::string& content, Replace r) {
    return WriteAtomic(fs, dirfd_.get(), "target", content, 0640, r, dir_ + "/target");
  }

  std::string dir_;
  UniqueFd dirfd_;
};

TEST_F(FsTest, WriteAtomicPlacesWithExactModeAndNoTemp) {
  ASSERT_TRUE(Write(PosixFs(), "hello", Replace::kNo).ok());
  EXPECT_EQ(Slurp(dir_ + "/target"), "hello");
  struct stat st{};
  ASSERT_EQ(::stat((dir_ + "/target").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(Entries(), std::vector<std::string>{"target"});
}

TEST_F(FsTest, NoReplaceRefusesAnExistingTargetAndKeepsIt) {
  Put("target", "original");
  Status st = Write(PosixFs(), "impostor", Replace::kNo);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kExists);
  EXPECT_EQ(Slurp(dir_ + "/target"), "original");
  EXPECT_EQ(Entries(), std::vector<std::string>{"target"});
  ASSERT_TRUE(Write(PosixFs(), "replacement", Replace::kYes).ok());
  EXPECT_EQ(Slurp(dir_ + "/target"), "replacement");
}

// A filesystem without RENAME_NOREPLACE answers EINVAL: the link(2) fallback
// places the file, and still refuses an existing target.
TEST_F(FsTest, FallbackWithoutRenameNoreplace) {
  for (int err : {EINVAL, ENOSYS}) {
    FaultFs fs;
    fs.Inject({.op = FsOp::kRename, .nth = 1, .err = err, .sticky = true});
    ASSERT_TRUE(Write(fs, "via link", Replace::kNo).ok());
    EXPECT_TRUE(fs.fired());
    EXPECT_EQ(fs.calls(FsOp::kLink), 1);
    EXPECT_EQ(Slurp(dir_ + "/target"), "via link");
    EXPECT_EQ(Entries(), std::vector<std::string>{"target"});  // temp name dropped
    Status again = Write(fs, "other", Replace::kNo);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().code(), ErrorCode::kExists);
    EXPECT_EQ(Slurp(dir_ + "/target"), "via link");
    EXPECT_EQ(Entries(), std::vector<std::string>{"target"});
    ASSERT_EQ(::unlink((dir_ + "/target").c_str()), 0);
  }
}

TEST_F(FsTest, ShortWritesAreCompleted) {
  FaultFs fs;
  fs.Inject({.op = FsOp::kWrite, .nth = 1, .kind = FaultKind::kShortWrite, .sticky = true});
  const std::string content(100000, 'w');
  ASSERT_TRUE(Write(fs, content, Replace::kNo).ok());
  EXPECT_TRUE(fs.fired());
  EXPECT_GT(fs.calls(FsOp::kWrite), 1);
  EXPECT_EQ(Slurp(dir_ + "/target"), content);
}

// Every call WriteAtomic makes, failed in turn with each errno: an error comes
// back (with the errno's code), the old content stays, no temp file is left.
TEST_F(FsTest, EveryFailingCallKeepsTheOldContent) {
  FaultFs counter;
  Put("target", "old");
  ASSERT_TRUE(Write(counter, "new", Replace::kYes).ok());
  const int total = counter.calls(FsOp::kAny);
  ASSERT_GE(total, 6);  // open, fchmod, write, fsync, rename, open dir, fsync dir
  for (int err : {ENOSPC, EIO, EDQUOT}) {
    for (int n = 1; n <= total; ++n) {
      Put("target", "old");
      FaultFs fs;
      fs.Inject({.op = FsOp::kAny, .nth = n, .err = err});
      Status st = Write(fs, "new", Replace::kYes);
      ASSERT_TRUE(fs.fired()) << n;
      const std::string now = Slurp(dir_ + "/target");
      if (st.ok()) {
        ADD_FAILURE() << "call " << n << " failed with " << err << " but WriteAtomic succeeded";
        continue;
      }
      EXPECT_EQ(st.error().code(), err == EIO ? ErrorCode::kIo : ErrorCode::kNoSpace) << n;
      EXPECT_EQ(st.error().message().find('\n'), std::string::npos);
      // Before the rename: old content; a failure after it (directory fsync)
      // is reported although the new content is complete.
      EXPECT_TRUE(now == "old" || now == "new") << n << ": " << now;
      EXPECT_EQ(Entries(), std::vector<std::string>{"target"}) << n;
    }
  }
}

// A crash (the process _exits) before or after any call: the final name holds
// the old or the whole new content, never a prefix.
TEST_F(FsTest, CrashAtEveryCallLeavesOldOrNewContent) {
  const std::string big(1 << 20, 'n');
  FaultFs counter;
  Put("target", "old");
  counter.Inject({.op = FsOp::kWrite, .nth = 1, .kind = FaultKind::kShortWrite, .sticky = true});
  ASSERT_TRUE(Write(counter, big, Replace::kYes).ok());
  const int total = counter.calls(FsOp::kAny);
  for (FaultKind kind : {FaultKind::kCrashBefore, FaultKind::kCrashAfter}) {
    for (int n = 1; n <= total; ++n) {
      Put("target", "old");
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        FaultFs fs;
        // Short writes in the child too, so crash points fall between writes.
        fs.Inject({.op = FsOp::kAny, .nth = n, .kind = kind, .exit_code = 86});
        (void)Write(fs, big, Replace::kYes);
        ::_exit(0);
      }
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status));
      const std::string now = Slurp(dir_ + "/target");
      EXPECT_TRUE(now == "old" || now == big) << "crash at call " << n << ": " << now.size() << " bytes";
      // Leftover temp names (a crash cannot clean up) never hold a final name.
      for (const auto& e : Entries()) {
        EXPECT_TRUE(e == "target" || e.ends_with(".wftmp")) << e;
        if (e != "target") ::unlink((dir_ + "/" + e).c_str());
      }
    }
  }
}

// --- the archive's system_identifier (issue 8 point 5) ---

std::vector<std::byte> Segment(std::uint64_t sysid) {
  return archive::testing::SynthHeader(0xD110, 1, 1 << 20, sysid, 1 << 20, 1 << 20);
}

Result<archive::CommitOutcome> Push(archive::Archive& a, const std::vector<std::byte>& data, int id) {
  archive::TransferSpec spec;
  spec.cluster = "main";
  spec.name = "000000010000000000000001";
  char tid[40];
  std::snprintf(tid, sizeof tid, "%032x", id);
  spec.transfer_id = tid;
  spec.raw_size = static_cast<std::int64_t>(data.size());
  WF_ASSIGN(auto in, a.Begin(spec));
  WF_TRY(in->Append(0, data, compress::Algorithm::kRaw, data));
  return in->Commit(data.size(), Xxh3_128(data));
}

TEST_F(FsTest, FirstSegmentCommitsWithoutRenameNoreplace) {
  FaultFs fs;
  fs.Inject({.op = FsOp::kRename, .nth = 1, .err = EINVAL, .sticky = true});
  auto a = archive::Archive::Open(dir_ + "/root", archive::StoreFormat::kRaw, fs);
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto seg = Segment(7001);
  auto r = Push(**a, seg, 1);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, archive::CommitOutcome::kPlaced);
  EXPECT_TRUE(fs.fired());
  EXPECT_EQ(Slurp(dir_ + "/root/main/system_identifier"), "7001\n");
  EXPECT_EQ(Slurp(dir_ + "/root/main/wal/000000010000000000000001").size(), seg.size());
  auto again = Push(**a, seg, 2);  // identical content: confirmed, not rewritten
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, archive::CommitOutcome::kAlreadyIdentical);
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/root/main")) {
    EXPECT_FALSE(e.path().filename().string().ends_with(".wftmp")) << e.path();
  }
}

// Another receiver process's temp file under the old fixed name (here: one it
// cannot be truncated into) does not stop this one from recording the id.
TEST_F(FsTest, SystemIdentifierDoesNotShareATempName) {
  ASSERT_EQ(::mkdir((dir_ + "/root").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir_ + "/root/main").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((dir_ + "/root/main/system_identifier.tmp").c_str(), 0700), 0);
  auto a = archive::Archive::Open(dir_ + "/root", archive::StoreFormat::kRaw);
  ASSERT_TRUE(a.ok()) << a.error().message();
  auto r = Push(**a, Segment(7002), 1);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Slurp(dir_ + "/root/main/system_identifier"), "7002\n");
}

// A crash at any step of recording the system identifier (first segment of a
// cluster) leaves no partial system_identifier: it is absent or complete.
TEST_F(FsTest, CrashWhileRecordingSystemIdentifier) {
  const auto seg = Segment(7003);
  FaultFs counter;
  {
    auto a = archive::Archive::Open(dir_ + "/count", archive::StoreFormat::kRaw, counter);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(Push(**a, seg, 1).ok());
  }
  const int total = counter.calls(FsOp::kAny);
  for (int n = 1; n <= total; ++n) {
    const std::string root = dir_ + "/crash" + std::to_string(n);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      FaultFs fs;
      fs.Inject({.op = FsOp::kAny, .nth = n, .kind = FaultKind::kCrashAfter});
      auto a = archive::Archive::Open(root, archive::StoreFormat::kRaw, fs);
      if (a.ok()) (void)Push(**a, seg, 1);
      ::_exit(0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    const std::string sysid = root + "/main/system_identifier";
    if (::access(sysid.c_str(), F_OK) == 0) {
      EXPECT_EQ(Slurp(sysid), "7003\n") << n;
    }
    const std::string final_name = root + "/main/wal/000000010000000000000001";
    if (::access(final_name.c_str(), F_OK) == 0) {
      EXPECT_EQ(Slurp(final_name).size(), seg.size()) << n;
    }
    // The receiver restarts and the same push succeeds.
    auto a = archive::Archive::Open(root, archive::StoreFormat::kRaw);
    ASSERT_TRUE(a.ok());
    auto r = Push(**a, seg, 2);
    EXPECT_TRUE(r.ok()) << n << ": " << r.error().message();
  }
}

}  // namespace
}  // namespace walferry
