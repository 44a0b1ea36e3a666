// FileIo: both implementations honour the same contract. The io_uring one is
// tested where the kernel lets us create a ring, and skipped (never failed)
// where it does not; ForcePreadFileIo forces the fallback.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/fd.h"
#include "core/io.h"

namespace walferry {
namespace {

std::unique_ptr<FileIo> UringOrNull() {
  ForcePreadFileIo(false);
  auto io = MakeFileIo();
  if (io->name() != "io_uring") return nullptr;
  return io;
}

struct Impl {
  const char* label;
  std::function<std::unique_ptr<FileIo>()> make;
};

class FileIoTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override {
    io_ = GetParam().make();
    if (!io_) GTEST_SKIP() << "io_uring is not available here (ring setup or probe failed)";
    char tmpl[] = "/tmp/wf-core-io.XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    path_ = tmpl;
    fd_.Reset(fd);
  }
  void TearDown() override {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  std::unique_ptr<FileIo> io_;
  UniqueFd fd_;
  std::string path_;
};

std::vector<std::byte> Pattern(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

TEST_P(FileIoTest, WriteThenReadBackAtOffsets) {
  auto a = Pattern(3 * 1024 * 1024 + 17, 1);  // larger than one request, odd length
  auto b = Pattern(4096, 2);
  ASSERT_TRUE(io_->WriteAt(fd_.get(), a, 0, path_).ok());
  ASSERT_TRUE(io_->WriteAt(fd_.get(), b, 1000, path_).ok());  // overwrite in the middle
  std::memcpy(a.data() + 1000, b.data(), b.size());

  std::vector<std::byte> got(a.size());
  auto n = io_->ReadAt(fd_.get(), got, 0, path_);
  ASSERT_TRUE(n.ok()) << n.error().message();
  ASSERT_EQ(*n, a.size());
  EXPECT_EQ(got, a);

  std::vector<std::byte> mid(100);
  auto m = io_->ReadAt(fd_.get(), mid, 999, path_);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(*m, 100u);
  EXPECT_EQ(0, std::memcmp(mid.data(), a.data() + 999, 100));
}

TEST_P(FileIoTest, ShortReadOnlyAtEof) {
  auto a = Pattern(10000, 3);
  ASSERT_TRUE(io_->WriteAt(fd_.get(), a, 0, path_).ok());
  std::vector<std::byte> got(8192);
  auto tail = io_->ReadAt(fd_.get(), got, 5000, path_);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, 5000u);
  EXPECT_EQ(0, std::memcmp(got.data(), a.data() + 5000, 5000));
  auto past = io_->ReadAt(fd_.get(), got, 20000, path_);
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
  auto none = io_->ReadAt(fd_.get(), std::span<std::byte>(), 0, path_);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
}

TEST_P(FileIoTest, DoesNotMoveTheFileOffset) {
  auto a = Pattern(100, 4);
  ASSERT_TRUE(io_->WriteAt(fd_.get(), a, 50, path_).ok());
  EXPECT_EQ(::lseek(fd_.get(), 0, SEEK_CUR), 0);
  std::vector<std::byte> got(10);
  ASSERT_TRUE(io_->ReadAt(fd_.get(), got, 60, path_).ok());
  EXPECT_EQ(::lseek(fd_.get(), 0, SEEK_CUR), 0);
}

TEST_P(FileIoTest, ErrorsNameTheFile) {
  std::vector<std::byte> buf(16);
  auto r = io_->ReadAt(-1, buf, 0, "nothing.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("nothing.bin"), std::string::npos) << r.error().message();
  // Writing through a read-only descriptor fails with EBADF, as an error value.
  UniqueFd ro(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ro.valid());
  Status w = io_->WriteAt(ro.get(), buf, 0, "ro.bin");
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code(), ErrorCode::kIo);
  EXPECT_NE(w.error().message().find("ro.bin"), std::string::npos);
}

TEST_P(FileIoTest, ReadsAPipeUntilEof) {
  // Not the intended use (sources read pipes with read(2)): pread refuses a
  // pipe with ESPIPE, io_uring reads it as a stream. Either way it returns.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  std::vector<std::byte> buf(4);
  w.Reset();
  auto res = io_->ReadAt(r.get(), buf, 0, "pipe");
  if (res.ok()) {
    EXPECT_EQ(*res, 0u);  // io_uring treats a non-seekable fd as a stream
  } else {
    EXPECT_NE(res.error().message().find("pipe"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Impls, FileIoTest,
    ::testing::Values(Impl{"pread", [] { return MakePreadFileIo(); }},
                      Impl{"io_uring", [] { return UringOrNull(); }}),
    [](const auto& info) { return std::string(info.param.label == std::string("pread") ? "Pread" : "IoUring"); });

TEST(MakeFileIo, NeverFailsAndNamesItsChoice) {
  ForcePreadFileIo(false);
  auto io = MakeFileIo();
  ASSERT_NE(io, nullptr);
  EXPECT_TRUE(io->name() == "io_uring" || io->name() == "pread") << io->name();
  EXPECT_EQ(MakePreadFileIo()->name(), "pread");
}

TEST(MakeFileIo, ForcedPreadIsHonoured) {
  ForcePreadFileIo(true);
  EXPECT_EQ(MakeFileIo()->name(), "pread");
  ForcePreadFileIo(false);
}

TEST(MakeFileIo, ManyInstancesDoNotExhaustResources) {
  // Each FileIo owns a ring; destroying it must release the ring and its fd.
  ForcePreadFileIo(false);
  std::string first(MakeFileIo()->name());
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(MakeFileIo()->name(), first) << i;
}

}  // namespace
}  // namespace walferry
