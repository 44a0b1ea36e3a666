// RenameUnsynced (core/fs.h): the rename of RenameDurable without its fsyncs,
// for restore_command's target only (PostgreSQL makes it durable itself).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/fs.h"
#include "tests/support/fault_fs.h"

namespace walferry {
namespace {

namespace fs = std::filesystem;
using faults::FaultFs;
using faults::FsOp;

class RenameUnsyncedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-unsynced.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string P(const std::string& n) { return dir_ + "/" + n; }
  std::string dir_;
};

TEST_F(RenameUnsyncedTest, RenamesWithoutAnyFsync) {
  std::ofstream(P("a")) << "new";
  FaultFs ffs;
  ASSERT_TRUE(RenameUnsynced(ffs, AT_FDCWD, P("a"), AT_FDCWD, P("b"), Replace::kYes, "b").ok());
  EXPECT_EQ(ffs.calls(FsOp::kFsync), 0);
  EXPECT_EQ(ffs.calls(FsOp::kRename), 1);
  EXPECT_FALSE(fs::exists(P("a")));
  std::ifstream f(P("b"));
  std::string got;
  f >> got;
  EXPECT_EQ(got, "new");
}

TEST_F(RenameUnsyncedTest, KeepsTheReplaceRule) {
  std::ofstream(P("a")) << "new";
  std::ofstream(P("b")) << "old";
  auto st = RenameUnsynced(PosixFs(), AT_FDCWD, P("a"), AT_FDCWD, P("b"), Replace::kNo, "b");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kExists);
  std::ifstream f(P("b"));
  std::string got;
  f >> got;
  EXPECT_EQ(got, "old");
}

TEST_F(RenameUnsyncedTest, AFailedRenameIsAnError) {
  std::ofstream(P("a")) << "new";
  FaultFs ffs;
  ffs.Inject({FsOp::kRename});
  EXPECT_FALSE(RenameUnsynced(ffs, AT_FDCWD, P("a"), AT_FDCWD, P("b"), Replace::kYes, "b").ok());
  EXPECT_TRUE(fs::exists(P("a")));
  EXPECT_FALSE(fs::exists(P("b")));
}

TEST_F(RenameUnsyncedTest, RenameDurableStillFsyncsFileAndDirectory) {
  std::ofstream(P("a")) << "new";
  UniqueFd fd(::open(P("a").c_str(), O_RDONLY | O_CLOEXEC));
  FaultFs ffs;
  ASSERT_TRUE(RenameDurable(ffs, fd.get(), AT_FDCWD, P("a"), AT_FDCWD, P("b"), Replace::kYes, "b").ok());
  EXPECT_EQ(ffs.calls(FsOp::kFsync), 2);
}

}  // namespace
}  // namespace walferry
