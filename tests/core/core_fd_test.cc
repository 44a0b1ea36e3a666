// UniqueFd ownership and the syscall helpers in core/fd.h.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/fd.h"
#include "tests/support/string_bytes.h"

namespace walferry {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

using testing_support::Bytes;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/wf-core-fd.XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(UniqueFd, ClosesOnDestruction) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[1]);
  {
    UniqueFd fd(fds[0]);
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(fd.get(), fds[0]);
  }
  EXPECT_FALSE(IsOpen(fds[0]));
}

TEST(UniqueFd, MoveTransfersOwnership) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd a(fds[0]), b(fds[1]);
  UniqueFd c(std::move(a));
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(c.get(), fds[0]);
  c = std::move(b);  // closes fds[0], takes fds[1]
  EXPECT_FALSE(IsOpen(fds[0]));
  EXPECT_TRUE(IsOpen(fds[1]));
  EXPECT_EQ(c.get(), fds[1]);
  UniqueFd& alias = c;
  c = std::move(alias);  // self-move keeps the fd
  EXPECT_TRUE(IsOpen(fds[1]));
}

TEST(UniqueFd, ReleaseAndReset) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd a(fds[0]);
  int raw = a.Release();
  EXPECT_FALSE(a.valid());
  EXPECT_TRUE(IsOpen(raw));
  a.Reset(raw);
  EXPECT_TRUE(a.valid());
  a.Reset(fds[1]);
  EXPECT_FALSE(IsOpen(raw));
  a.Reset();
  EXPECT_FALSE(IsOpen(fds[1]));
  EXPECT_EQ(a.get(), -1);
}

TEST(OpenFile, MissingFileIsNotFoundWithPathInMessage) {
  auto r = OpenFile("/nonexistent/walferry/x", O_RDONLY);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("/nonexistent/walferry/x"), std::string::npos);
}

TEST(OpenFile, SetsCloexec) {
  TempDir dir;
  auto r = OpenFile(dir.path() + "/f", O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(::fcntl(r->get(), F_GETFD) & FD_CLOEXEC);
  auto ex = OpenFile(dir.path() + "/f", O_WRONLY | O_CREAT | O_EXCL, 0600);
  ASSERT_FALSE(ex.ok());
  EXPECT_EQ(ex.error().code(), ErrorCode::kExists);
}

TEST(OpenAt, OpensRelativeToDirectory) {
  TempDir dir;
  auto d = OpenFile(dir.path(), O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(d.ok());
  auto f = OpenAt(d->get(), "child", O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(f.ok()) << f.error().message();
  struct stat st{};
  EXPECT_EQ(::stat((dir.path() + "/child").c_str(), &st), 0);
  auto missing = OpenAt(d->get(), "nope", O_RDONLY);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST(ReadWriteFull, PipeRoundTripLargerThanPipeBuffer) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]), w(fds[1]);
  std::string data(1 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  std::thread writer([&] {
    EXPECT_TRUE(WriteFull(w.get(), Bytes(data), "pipe").ok());
    w.Reset();
  });
  std::vector<std::byte> got(data.size() + 100);
  auto n = ReadFull(r.get(), got, "pipe");
  writer.join();
  ASSERT_TRUE(n.ok());
  ASSERT_EQ(*n, data.size());  // short only at EOF
  EXPECT_EQ(std::memcmp(got.data(), data.data(), data.size()), 0);
  auto eof = ReadFull(r.get(), got, "pipe");
  ASSERT_TRUE(eof.ok());
  EXPECT_EQ(*eof, 0u);
}

TEST(ReadWriteFull, WriteToClosedPipeIsNetworkClassError) {
  ::signal(SIGPIPE, SIG_IGN);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  UniqueFd w(fds[1]);
  Status s = WriteFull(w.get(), Bytes("x"), "stdout");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kNetwork);  // EPIPE
  EXPECT_EQ(s.error().message().rfind("write stdout: ", 0), 0u) << s.error().message();
}

TEST(ReadWriteFull, BadFdIsAnErrorNotACrash) {
  std::byte b[4];
  auto r = ReadFull(-1, b, "nothing");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
}

TEST(PreadPwrite, PositionalAndShortAtEof) {
  TempDir dir;
  auto f = OpenFile(dir.path() + "/p", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(PwriteFull(f->get(), Bytes("world"), 5, "p").ok());
  ASSERT_TRUE(PwriteFull(f->get(), Bytes("hello"), 0, "p").ok());
  std::byte buf[16];
  auto n = PreadFull(f->get(), buf, 0, "p");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 10u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 10), "helloworld");
  auto tail = PreadFull(f->get(), std::span(buf, 3), 8, "p");
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, 2u);
  auto past = PreadFull(f->get(), buf, 100, "p");
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, 0u);
  EXPECT_EQ(::lseek(f->get(), 0, SEEK_CUR), 0);  // positional: the offset did not move
}

TEST(Fsync, FileAndDirectory) {
  TempDir dir;
  auto f = OpenFile(dir.path() + "/s", O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(Fsync(f->get(), "s").ok());
  EXPECT_TRUE(FsyncDir(dir.path()).ok());
  Status missing = FsyncDir(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(Fsync(-1, "bad").ok());
}

TEST(ReadSmallFile, ReadsAndEnforcesLimit) {
  TempDir dir;
  std::string path = dir.path() + "/cfg";
  std::string content(100000, 'k');
  {
    auto f = OpenFile(path, O_WRONLY | O_CREAT, 0600);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(WriteFull(f->get(), Bytes(content), path).ok());
  }
  auto all = ReadSmallFile(path);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, content);
  auto exact = ReadSmallFile(path, content.size());
  ASSERT_TRUE(exact.ok());
  auto over = ReadSmallFile(path, content.size() - 1);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code(), ErrorCode::kInvalidArgument);
  auto missing = ReadSmallFile(dir.path() + "/none");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace walferry
