// ByteSource/ByteSink and AtomicFile: the final name never holds a partial file.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/fd.h"
#include "core/stream.h"
#include "tests/support/string_bytes.h"

namespace walferry {
namespace {

using testing_support::Bytes;

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-core-stream.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(dir_.c_str());
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
  }
  static bool Exists(const std::string& p) {
    struct stat st{};
    return ::lstat(p.c_str(), &st) == 0;
  }
  static std::string Slurp(const std::string& p) {
    auto r = ReadSmallFile(p);
    EXPECT_TRUE(r.ok()) << p;
    return r.ok() ? *r : std::string();
  }
  void WriteFile(const std::string& p, const std::string& content) {
    auto f = OpenFile(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(WriteFull(f->get(), Bytes(content), p).ok());
  }
  std::string ReadAll(ByteSource& src, std::size_t piece) {
    std::string out;
    std::vector<std::byte> buf(piece);
    for (;;) {
      auto n = src.Read(buf);
      EXPECT_TRUE(n.ok());
      if (!n.ok() || *n == 0) break;
      out.append(reinterpret_cast<const char*>(buf.data()), *n);
      if (*n < piece) {
        // Sources fill the buffer unless the stream ends: the next read is EOF.
        auto eof = src.Read(buf);
        EXPECT_TRUE(eof.ok() && *eof == 0);
        break;
      }
    }
    return out;
  }
  std::string dir_;
};

TEST_F(StreamTest, AtomicFileHasNoFinalNameUntilCommit) {
  std::string path = dir_ + "/base.tar.zst";
  auto f = AtomicFile::Create(path, false);
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_TRUE((*f)->Write(Bytes("hello ")).ok());
  ASSERT_TRUE((*f)->Write(Bytes("world")).ok());
  EXPECT_FALSE(Exists(path));
  EXPECT_TRUE(Exists((*f)->temp_path()));
  EXPECT_EQ(DirName((*f)->temp_path()), dir_);  // same directory: rename stays atomic
  EXPECT_NE(BaseName((*f)->temp_path()), "base.tar.zst");
  EXPECT_TRUE((*f)->Finish().ok());
  ASSERT_TRUE((*f)->Commit().ok());
  EXPECT_EQ(Slurp(path), "hello world");
  std::string temp = (*f)->temp_path();
  f->reset();  // destructor after Commit keeps the file
  EXPECT_TRUE(Exists(path));
  EXPECT_FALSE(Exists(temp));
  EXPECT_EQ(Entries(), std::vector<std::string>{"base.tar.zst"});
}

TEST_F(StreamTest, AtomicFileDestructorRemovesTemp) {
  std::string path = dir_ + "/partial";
  {
    auto f = AtomicFile::Create(path, false);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write(Bytes(std::string(100000, 'x'))).ok());
  }
  EXPECT_TRUE(Entries().empty());
}

TEST_F(StreamTest, AtomicFileRefusesToReplaceWithoutOverwrite) {
  std::string path = dir_ + "/000000010000000000000001";
  WriteFile(path, "original");
  auto f = AtomicFile::Create(path, false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(Bytes("impostor")).ok());
  Status s = (*f)->Commit();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kExists);
  EXPECT_NE(s.error().message().find(path), std::string::npos);
  EXPECT_EQ(s.error().message().find('\n'), std::string::npos);
  f->reset();
  EXPECT_EQ(Slurp(path), "original");  // untouched
  EXPECT_EQ(Entries(), std::vector<std::string>{"000000010000000000000001"});  // temp gone
}

TEST_F(StreamTest, AtomicFileOverwriteReplaces) {
  std::string path = dir_ + "/out";
  WriteFile(path, "old content that is longer");
  auto f = AtomicFile::Create(path, true, 0600);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(Bytes("new")).ok());
  EXPECT_EQ(Slurp(path), "old content that is longer");  // still old until Commit
  ASSERT_TRUE((*f)->Commit().ok());
  EXPECT_EQ(Slurp(path), "new");
  struct stat st{};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  f->reset();
  EXPECT_EQ(Entries(), std::vector<std::string>{"out"});
}

TEST_F(StreamTest, AtomicFileEmptyCommitCreatesEmptyFile) {
  std::string path = dir_ + "/empty";
  auto f = AtomicFile::Create(path, false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Commit().ok());
  EXPECT_TRUE(Exists(path));
  EXPECT_EQ(Slurp(path), "");
}

TEST_F(StreamTest, AtomicFileTempNamesAreUnique) {
  std::string path = dir_ + "/same";
  auto a = AtomicFile::Create(path, false);
  auto b = AtomicFile::Create(path, false);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->temp_path(), (*b)->temp_path());
  ASSERT_TRUE((*a)->Write(Bytes("a")).ok());
  ASSERT_TRUE((*b)->Write(Bytes("b")).ok());
  ASSERT_TRUE((*a)->Commit().ok());
  Status second = (*b)->Commit();  // two writers race: exactly one wins
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), ErrorCode::kExists);
  EXPECT_EQ(Slurp(path), "a");
}

TEST_F(StreamTest, AtomicFileInMissingDirectoryFails) {
  auto f = AtomicFile::Create(dir_ + "/no/such/dir/file", false);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(f.error().message().find('\n'), std::string::npos);
}

TEST_F(StreamTest, AtomicFileLongestNameFits) {
  // A receiver accepts names up to 255 bytes; the temp name must still fit.
  std::string name(255, 'n');
  auto f = AtomicFile::Create(dir_ + "/" + name, false);
  ASSERT_TRUE(f.ok()) << f.error().message();
  ASSERT_TRUE((*f)->Write(Bytes("long")).ok());
  ASSERT_TRUE((*f)->Commit().ok());
  EXPECT_EQ(Slurp(dir_ + "/" + name), "long");
  f->reset();
  EXPECT_EQ(Entries(), std::vector<std::string>{name});
}

TEST_F(StreamTest, AtomicFileRelativePath) {
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  auto f = AtomicFile::Create("rel", false);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Write(Bytes("r")).ok());
  Status s = (*f)->Commit();
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(Slurp(dir_ + "/rel"), "r");
}

TEST_F(StreamTest, OpenSourceReadsRegularFileWithSize) {
  std::string path = dir_ + "/in";
  std::mt19937 rng(1);
  std::string content(1 << 20 | 123, '\0');
  for (auto& c : content) c = static_cast<char>(rng());
  WriteFile(path, content);
  auto src = OpenSource(path);
  ASSERT_TRUE(src.ok()) << src.error().message();
  EXPECT_EQ((*src)->SizeHint(), static_cast<long long>(content.size()));
  EXPECT_EQ((*src)->name(), path);
  EXPECT_EQ(ReadAll(**src, 65536), content);
}

TEST_F(StreamTest, OpenSourceErrors) {
  auto missing = OpenSource(dir_ + "/missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message().find("missing"), std::string::npos);
  // A directory opens but does not read.
  auto d = OpenSource(dir_);
  if (d.ok()) {
    std::vector<std::byte> buf(16);
    auto r = (*d)->Read(buf);
    EXPECT_FALSE(r.ok());
  }
}

TEST_F(StreamTest, FdSourceOnPipeHasNoSizeAndFillsBuffers) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string content(300000, 'p');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  std::thread writer([&] {
    // Many small writes: the source must still return full buffers.
    for (std::size_t off = 0; off < content.size(); off += 1000) {
      ASSERT_TRUE(WriteFull(fds[1], Bytes(content.substr(off, 1000)), "pipe").ok());
    }
    ::close(fds[1]);
  });
  auto src = FdSource(fds[0], "pipe-in", true);
  EXPECT_EQ(src->SizeHint(), -1);
  EXPECT_EQ(src->name(), "pipe-in");
  EXPECT_EQ(ReadAll(*src, 65536), content);
  writer.join();
  src.reset();
  EXPECT_EQ(::fcntl(fds[0], F_GETFD), -1);  // owned: closed by the source
}

TEST_F(StreamTest, FdSourceNotOwnedLeavesFdOpen) {
  std::string path = dir_ + "/f";
  WriteFile(path, "0123456789");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  {
    auto src = FdSource(fd, "file", false);
    EXPECT_EQ(src->SizeHint(), 10);
    EXPECT_EQ(ReadAll(*src, 4), "0123456789");
  }
  EXPECT_NE(::fcntl(fd, F_GETFD), -1);
  ::close(fd);

  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[1]);
  { auto src = FdSource(fds[0], "pipe", false); }
  EXPECT_NE(::fcntl(fds[0], F_GETFD), -1);
  ::close(fds[0]);
}

TEST_F(StreamTest, FdSourceOnPartlyReadFileContinuesFromPosition) {
  // stdin redirected from a file that the shell already read into: the
  // source must start where the descriptor is, not at 0.
  std::string path = dir_ + "/f";
  WriteFile(path, "headerBODY");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::lseek(fd, 6, SEEK_SET), 6);
  auto src = FdSource(fd, "stdin", true);
  EXPECT_EQ(ReadAll(*src, 16), "BODY");
}

TEST_F(StreamTest, FdSinkWritesToPipe) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd r(fds[0]);
  std::string got;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(r.get(), buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
  });
  {
    auto sink = FdSink(fds[1], "stdout");
    std::string big(200000, 'z');
    ASSERT_TRUE(sink->Write(Bytes(big)).ok());
    ASSERT_TRUE(sink->Write(Bytes("end")).ok());
    ASSERT_TRUE(sink->Finish().ok());
  }
  EXPECT_NE(::fcntl(fds[1], F_GETFD), -1);  // not owned
  ::close(fds[1]);
  reader.join();
  EXPECT_EQ(got.size(), 200003u);
  EXPECT_EQ(got.substr(200000), "end");
}

TEST(PathParts, DirNameAndBaseName) {
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("/x"), "/");
  EXPECT_EQ(DirName("plain"), ".");
  EXPECT_EQ(DirName("/var/lib/pg/"), "/var/lib/pg");
  EXPECT_EQ(BaseName("pg_wal/000000010000000000000001"), "000000010000000000000001");
  EXPECT_EQ(BaseName("plain"), "plain");
  EXPECT_EQ(BaseName("/"), "");
}

}  // namespace
}  // namespace walferry
