// The receiver's data path under disk faults, as a user meets them: the real
// `walferry push` binary ships a real 16 MiB WAL segment (initdb's first, in
// 1 MiB chunks: 16 temp-data writes) to a receiver
// (transport::Server on 127.0.0.1) whose archive writes through the
// fault-injecting filesystem (tests/support/fault_fs.h).
//   - EIO, ENOSPC, EDQUOT, and a short write followed by ENOSPC, at the N-th
//     write of the segment's temp data: push exits non-zero with one line that
//     names the cause; nothing is under the final name; the temp data is
//     removed; a push after the fault succeeds, byte-identical, and leaves
//     nothing of the transfer in .incoming.
//   - A short write alone is completed: push exits 0, byte-identical.
//   - The receiver process _exits at the N-th data write (a crash point): push
//     fails; a restarted receiver on the same root resumes the transfer (that
//     receiver ACKs every 4 MiB: a crash after the 8th chunk resumes from it)
//     or restarts it, and the next push succeeds, byte-identical.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "archive/archive.h"
#include "core/hash.h"
#include "tests/support/archive_test_util.h"
#include "tests/support/fault_fs.h"
#include "transport/net.h"
#include "transport/server.h"

namespace walferry::archive {
namespace {

using faults::Fault;
using faults::FaultFs;
using faults::FaultKind;
using faults::FsOp;

constexpr char kSeg[] = "000000010000000000000001";
constexpr int kDataWrites = 16;  // 16 MiB in 1 MiB chunks

struct CliRun {
  int code = -1;
  std::string err;
};

class PushFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    seg_ = testing::RealWalSegment(16);
    if (seg_.empty()) GTEST_SKIP() << "PostgreSQL 15 initdb not available";
    ASSERT_EQ(seg_.size(), 16u << 20);
    dir_ = testing::MakeTempDir("pushfaults");
    ASSERT_FALSE(dir_.empty());
    std::filesystem::create_directories(dir_ + "/pg_wal");
    testing::WriteBytes(dir_ + "/pg_wal/" + kSeg, seg_);
  }
  void TearDown() override {
    StopServer();
    if (!dir_.empty()) testing::RemoveTree(dir_);
  }

  std::string root() const { return dir_ + "/root"; }

  // A receiver in this process on a fresh port, its archive writing through `fs`.
  void StartServer(FileSystem& fs) {
    auto a = Archive::Open(root(), StoreFormat::kZstd, fs);
    ASSERT_TRUE(a.ok()) << a.error().message();
    archive_ = std::move(*a);
    transport::TlsConfig tls;
    tls.insecure_loopback = true;
    auto l = transport::Listen(transport::Endpoint{"127.0.0.1", 0}, tls);
    ASSERT_TRUE(l.ok()) << l.error().message();
    listener_ = std::move(*l);
    port_ = listener_->port();
    transport::ServerOptions so;
    so.insecure = true;
    so.log = [this](const std::string& line) {
      std::lock_guard lk(log_mu_);
      log_ += line + "\n";
    };
    server_ = std::make_unique<transport::Server>(*archive_, so);
    thread_ = std::thread([this] { (void)server_->Run(*listener_); });
  }
  void StopServer() {
    if (server_) {
      server_->Stop();
      thread_.join();
    }
    server_.reset();
    listener_.reset();
    archive_.reset();
  }
  std::string Log() {
    std::lock_guard lk(log_mu_);
    return log_;
  }

  CliRun Push() {
    const std::string errf = dir_ + "/push.err";
    const std::string cmd = std::string(WALFERRY_BIN) + " push " + dir_ + "/pg_wal/" + kSeg +
                            " --to 127.0.0.1:" + std::to_string(port_) +
                            " --insecure-loopback --cluster main --chunk-kib 1024 --retries 0"
                            " --tls-session-cache off >/dev/null 2>" + errf;
    int st = std::system(cmd.c_str());
    CliRun r;
    r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    auto bytes = testing::ReadBytes(errf);
    r.err.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return r;
  }

  // A failed push: non-zero, not by a signal, exactly one line naming `cause`.
  void ExpectOneLineFailure(const CliRun& r, const std::string& cause, const std::string& label) {
    EXPECT_NE(r.code, 0) << label;
    EXPECT_LT(r.code, 126) << label << ": exit " << r.code;
    ASSERT_FALSE(r.err.empty()) << label;
    EXPECT_EQ(r.err.back(), '\n') << label;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << label << ": more than one line: " << r.err;
    EXPECT_NE(r.err.find(cause), std::string::npos) << label << ": " << r.err;
  }

  // Whatever is under the segment's name, in any store format.
  bool FinalNameExists() const {
    for (const char* suffix : {"", ".zst", ".gz"}) {
      if (testing::Exists(root() + "/main/wal/" + kSeg + suffix)) return true;
    }
    return false;
  }

  // The stored segment, read back and compared with what was pushed.
  void ExpectStoredIntact(const std::string& label) {
    auto a = Archive::OpenForReading(root());
    ASSERT_TRUE(a.ok()) << label << ": " << a.error().message();
    auto e = (*a)->Find("main", kSeg);
    ASSERT_TRUE(e.ok()) << label << ": " << e.error().message();
    auto h = HashEntry(*e);
    ASSERT_TRUE(h.ok()) << label << ": " << h.error().message();
    EXPECT_EQ(h->first, seg_.size()) << label << ": PARTIAL segment under the final name";
    EXPECT_TRUE(h->second == Xxh3_128(seg_)) << label << ": WRONG content under the final name";
  }

  // Temp data (<id>.data) and manifests (<id>.state, their temp files) in .incoming.
  std::vector<std::string> IncomingFiles() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(root() + "/.incoming", ec)) {
      out.push_back(e.path().filename());
    }
    return out;
  }

  void Reset() {
    StopServer();
    std::filesystem::remove_all(root());
    std::lock_guard lk(log_mu_);
    log_.clear();
  }

  std::vector<std::byte> seg_;
  std::string dir_;
  std::unique_ptr<Archive> archive_;
  std::unique_ptr<transport::Listener> listener_;
  std::unique_ptr<transport::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex log_mu_;
  std::string log_;
};

TEST_F(PushFaults, ErrnoAtTheNthDataWriteFailsCleanlyAndARetrySucceeds) {
  // Each fault is checked to strike; a clean push first shows how many data writes there are.
  {
    FaultFs counter;
    StartServer(counter);
    CliRun r = Push();
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(counter.calls(FsOp::kWriteAt), kDataWrites);
    ExpectStoredIntact("clean push");
    Reset();
  }
  int cases = 0;
  for (int err : {EIO, ENOSPC, EDQUOT}) {
    for (int n : {1, 9, kDataWrites}) {
      const std::string label = std::string(strerrorname_np(err)) + " at data write " + std::to_string(n);
      FaultFs fs;
      StartServer(fs);
      fs.Inject({.op = FsOp::kWriteAt, .nth = n, .kind = FaultKind::kErrno, .err = err});
      CliRun r = Push();
      EXPECT_TRUE(fs.fired()) << label;
      ExpectOneLineFailure(r, std::strerror(err), label);
      EXPECT_FALSE(FinalNameExists()) << label << ": something under the final name";
      // The receiver abandons a transfer whose disk write failed (transport/server.cc Keep).
      auto left = IncomingFiles();
      EXPECT_TRUE(left.empty()) << label << ": temp data left: " << left.size() << " file(s), e.g. "
                                << (left.empty() ? "" : left[0]);
      // The fault is over: the next push (as PostgreSQL's retry) succeeds.
      fs.Clear();
      CliRun again = Push();
      EXPECT_EQ(again.code, 0) << label << ": retry: " << again.err;
      ExpectStoredIntact(label + ", retry");
      EXPECT_TRUE(IncomingFiles().empty()) << label << ": .incoming not empty after the retry";
      Reset();
      ++cases;
    }
  }
  std::printf("[ faults ] %d errno cases through the real push binary\n", cases);
}

TEST_F(PushFaults, AShortDataWriteIsCompletedAndAShortWriteThenFullDiskFailsCleanly) {
  for (int n : {1, 9, kDataWrites}) {
    const std::string label = "short data write " + std::to_string(n);
    {
      FaultFs fs;
      StartServer(fs);
      fs.Inject({.op = FsOp::kWriteAt, .nth = n, .kind = FaultKind::kShortWrite});
      CliRun r = Push();
      EXPECT_TRUE(fs.fired()) << label;
      EXPECT_EQ(r.code, 0) << label << ": a short write is not an error: " << r.err;
      EXPECT_EQ(fs.calls(FsOp::kWriteAt), kDataWrites + 1) << label << ": the rest written by one more call";
      ExpectStoredIntact(label);
      EXPECT_TRUE(IncomingFiles().empty()) << label;
      Reset();
    }
    {
      FaultFs fs;
      StartServer(fs);
      fs.Inject({.op = FsOp::kWriteAt, .nth = n, .kind = FaultKind::kShortThenErrno, .err = ENOSPC});
      CliRun r = Push();
      EXPECT_TRUE(fs.fired()) << label;
      ExpectOneLineFailure(r, "No space left on device", label + " then ENOSPC");
      EXPECT_FALSE(FinalNameExists()) << label;
      EXPECT_TRUE(IncomingFiles().empty()) << label << " then ENOSPC: temp data left";
      fs.Clear();
      CliRun again = Push();
      EXPECT_EQ(again.code, 0) << label << " then ENOSPC, retry: " << again.err;
      ExpectStoredIntact(label + " then ENOSPC, retry");
      Reset();
    }
  }
}

// The receiver is a child process that _exits at the N-th data write.
TEST_F(PushFaults, ACrashAtTheNthDataWriteThenARestartedReceiverCompletesThePush) {
  for (int n : {3, 12}) {
    const std::string label = "crash at data write " + std::to_string(n);
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(p[0]);
      FaultFs fs;
      fs.Inject({.op = FsOp::kWriteAt, .nth = n, .kind = FaultKind::kCrashBefore, .exit_code = 86});
      auto a = Archive::Open(root(), StoreFormat::kZstd, fs);
      transport::TlsConfig tls;
      tls.insecure_loopback = true;
      auto l = transport::Listen(transport::Endpoint{"127.0.0.1", 0}, tls);
      if (!a.ok() || !l.ok()) ::_exit(2);
      int port = (*l)->port();
      if (::write(p[1], &port, sizeof port) != sizeof port) ::_exit(3);
      ::close(p[1]);
      transport::ServerOptions so;
      so.insecure = true;
      so.sync_bytes = 4u << 20;  // a segment gets ACKs (Sync) after chunks 4, 8, 12
      so.log = [](const std::string&) {};
      transport::Server server(**a, so);
      (void)server.Run(**l);
      ::_exit(0);
    }
    ::close(p[1]);
    int port = 0;
    ASSERT_EQ(::read(p[0], &port, sizeof port), static_cast<ssize_t>(sizeof port)) << label;
    ::close(p[0]);
    port_ = port;
    CliRun r = Push();
    int status = 0;
    ::kill(pid, SIGTERM);  // only if the crash point was not reached
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status)) << label << ": the receiver died by a signal, not at the crash point";
    EXPECT_EQ(WEXITSTATUS(status), 86) << label << ": the crash point was not reached";
    EXPECT_NE(r.code, 0) << label << ": push succeeded although the receiver died";
    EXPECT_LT(r.code, 126) << label;
    EXPECT_FALSE(FinalNameExists()) << label;
    // The restarted receiver.
    StartServer(PosixFs());
    CliRun again = Push();
    EXPECT_EQ(again.code, 0) << label << ": after the restart: " << again.err;
    ExpectStoredIntact(label + ", after the restart");
    EXPECT_TRUE(IncomingFiles().empty()) << label << ": .incoming not empty";
    if (n > 8) {
      EXPECT_NE(Log().find("resumed_from=8"), std::string::npos) << label << ": not resumed:\n" << Log();
    }
    Reset();
  }
}

}  // namespace
}  // namespace walferry::archive
