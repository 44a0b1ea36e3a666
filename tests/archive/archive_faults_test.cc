// Fault injection through the filesystem seam (core/fs.h, tests/support/
// fault_fs.h) at every step of a receiver-side transfer: Archive::Open, Begin,
// the temp-data writes (positional, through FileSystem::WriteAt), the
// fdatasync and manifest replacement of Sync (an ACK), Commit's
// fsync/rename/directory fsync. The N-th call fails with ENOSPC, EIO or EDQUOT,
// writes short (alone, or followed by ENOSPC), or the process _exits before or
// after it (in a forked child).
// After each, the "receiver restarts" (a fresh Archive on the real filesystem)
// and the invariant is checked:
//   - no partial or wrong file under the final name, ever;
//   - a transfer whose Commit returned OK is intact; chunks acknowledged by
//     Sync are still durable (the resume point is not below them);
//   - the same transfer resumes or starts over and completes byte-identical,
//     and then .incoming holds nothing of it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "tests/support/archive_test_util.h"
#include "core/hash.h"
#include "tests/support/fault_fs.h"

namespace walferry::archive {
namespace {

using faults::Fault;
using faults::FaultFs;
using faults::FaultKind;
using faults::FsOp;
using testing::Pattern;

constexpr std::size_t kFaultChunk = 64 * 1024;
constexpr int kChunks = 5;
constexpr int kAckAfter = 2;  // Sync (manifest replacement) after chunks 2 and 4
const char* kId = "0123456789abcdef0123456789abcdef";

struct Outcome {
  bool opened = false;
  std::uint64_t acked = 0;  // chunks Sync reported durable
  bool committed = false;
  std::string error;
};

class ArchiveFaults : public ::testing::TestWithParam<StoreFormat> {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("archfaults");
    ASSERT_FALSE(dir_.empty());
    data_ = Pattern(kFaultChunk * kChunks - 1000, 7);
    hash_ = Xxh3_128(data_);
  }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::string root() const { return dir_ + "/root"; }
  std::span<const std::byte> ChunkAt(std::uint64_t i) const {
    std::size_t off = i * kFaultChunk;
    return std::span(data_).subspan(off, std::min(kFaultChunk, data_.size() - off));
  }
  TransferSpec Spec() const { return {"main", "f.bin", kId, static_cast<std::int64_t>(data_.size())}; }

  // The receiver's side of one transfer, stopping at the first error (as the
  // server drops the connection). `report` sees each durable step as it happens.
  template <typename Report>
  Outcome Run(FileSystem& fs, Report report) {
    Outcome o;
    auto a = Archive::Open(root(), GetParam(), fs);
    if (!a.ok()) return o.error = a.error().message(), o;
    auto inc = (*a)->Begin(Spec());
    if (!inc.ok()) return o.error = inc.error().message(), o;
    o.opened = true;
    for (std::uint64_t i = (*inc)->next_chunk(); i < kChunks; ++i) {
      Status st = Append(**inc, i);
      if (!st.ok()) return o.error = st.error().message(), o;
      if ((i + 1) % kAckAfter == 0 && i + 1 < kChunks) {
        auto d = (*inc)->Sync();
        if (!d.ok()) return o.error = d.error().message(), o;
        o.acked = *d;
        report(o);
      }
    }
    auto c = (*inc)->Commit(data_.size(), hash_);
    if (!c.ok()) return o.error = c.error().message(), o;
    o.committed = true;
    report(o);
    return o;
  }

  Status Append(Incoming& inc, std::uint64_t i) {
    auto raw = ChunkAt(i);
    if (GetParam() == StoreFormat::kRaw) return inc.Append(i, raw, compress::Algorithm::kRaw, raw);
    auto codec = compress::MakeCodec(compress::Algorithm::kZstd, 1);
    EXPECT_TRUE(codec.ok());
    std::vector<std::byte> frame((*codec)->Bound(raw.size()));
    auto n = (*codec)->Compress(raw, frame);
    EXPECT_TRUE(n.ok());
    frame.resize(*n);
    return inc.Append(i, raw, compress::Algorithm::kZstd, frame);
  }

  // Nothing but the complete content may be under the final name.
  void CheckFinal(const std::string& label, bool must_exist) {
    auto a = Archive::OpenForReading(root());
    if (!a.ok()) {
      EXPECT_FALSE(must_exist) << label << ": " << a.error().message();
      return;
    }
    auto e = (*a)->Find("main", "f.bin");
    if (!e.ok()) {
      EXPECT_FALSE(must_exist) << label << ": committed file missing: " << e.error().message();
      return;
    }
    auto h = HashEntry(*e);
    ASSERT_TRUE(h.ok()) << label << ": final name unreadable: " << h.error().message();
    EXPECT_EQ(h->first, data_.size()) << label << ": PARTIAL file under the final name";
    EXPECT_TRUE(h->second == hash_) << label << ": WRONG content under the final name";
  }

  // The restarted receiver: the transfer resumes at or after what was
  // acknowledged (`keeps_acked`: a crash or EIO; a full disk drops the
  // transfer by contract, and a transfer already under its final name starts
  // over to be confirmed identical), completes, and after the purge of stale
  // temp files (crash leftovers) leaves nothing of itself in .incoming.
  void Restart(const std::string& label, const Outcome& before, bool keeps_acked) {
    auto a = Archive::Open(root(), GetParam());
    ASSERT_TRUE(a.ok()) << label << ": " << a.error().message();
    ASSERT_TRUE((*a)->PurgeStale(24 * 3600).ok());
    bool placed = (*a)->Find("main", "f.bin").ok();
    auto inc = (*a)->Begin(Spec());
    ASSERT_TRUE(inc.ok()) << label << ": restart Begin: " << inc.error().message();
    if (keeps_acked && !placed) {
      EXPECT_GE((*inc)->next_chunk(), before.acked) << label << ": acknowledged chunks lost";
    }
    if ((*inc)->next_chunk() > 0) ++resumed_;
    for (std::uint64_t i = (*inc)->next_chunk(); i < kChunks; ++i) {
      Status st = Append(**inc, i);
      ASSERT_TRUE(st.ok()) << label << ": restart append " << i << ": " << st.error().message();
    }
    auto c = (*inc)->Commit(data_.size(), hash_);
    ASSERT_TRUE(c.ok()) << label << ": restart commit: " << c.error().message();
    if (before.committed || placed) {
      EXPECT_EQ(*c, CommitOutcome::kAlreadyIdentical) << label;
    }
    inc->reset();
    CheckFinal(label + " after restart", true);
    ASSERT_TRUE((*a)->PurgeStale(-1).ok());  // "older than -1 s": everything not in use
    for (const auto& e : std::filesystem::directory_iterator(root() + "/.incoming")) {
      std::string n = e.path().filename();
      EXPECT_EQ(n.find(kId), std::string::npos) << label << ": left in .incoming: " << n;
    }
    // Next case starts from an empty archive.
    std::filesystem::remove_all(root());
  }

  int Calls(FsOp op) {
    FaultFs counter;
    Outcome o = Run(counter, [](const Outcome&) {});
    EXPECT_TRUE(o.committed) << o.error;
    std::filesystem::remove_all(root());
    return counter.calls(op);
  }

  Fault pending_;
  std::string dir_;
  std::vector<std::byte> data_;
  Hash128 hash_;
  int resumed_ = 0;
};

// ENOSPC, EIO, EDQUOT at every call, and a short write at every write: an
// error or success comes back, never a crash; the invariant holds.
TEST_P(ArchiveFaults, ErrnoAtEveryCall) {
  const int total = Calls(FsOp::kAny);
  ASSERT_GT(total, 10);
  int failed = 0;
  for (int err : {ENOSPC, EIO, EDQUOT}) {
    for (int n = 1; n <= total; ++n) {
      std::string label = std::string(strerrorname_np(err)) + " at call " + std::to_string(n);
      FaultFs fs;
      fs.Inject({.op = FsOp::kAny, .nth = n, .kind = FaultKind::kErrno, .err = err});
      Outcome o = Run(fs, [](const Outcome&) {});
      EXPECT_TRUE(fs.fired()) << label;
      if (!o.committed) ++failed;
      CheckFinal(label, o.committed);
      Restart(label, o, err == EIO);
    }
  }
  EXPECT_GT(failed, 0);
  // kWrite: manifests (and system identifiers); kWriteAt: the temp data.
  int writes = 0;
  for (FsOp op : {FsOp::kWrite, FsOp::kWriteAt}) {
    const int n_op = Calls(op);
    EXPECT_GT(n_op, 0);
    writes += n_op;
    for (int n = 1; n <= n_op; ++n) {
      std::string label = std::string(op == FsOp::kWrite ? "short write at write " : "short write at data write ") +
                          std::to_string(n);
      FaultFs fs;
      fs.Inject({.op = op, .nth = n, .kind = FaultKind::kShortWrite});
      Outcome o = Run(fs, [](const Outcome&) {});
      EXPECT_TRUE(fs.fired()) << label;
      EXPECT_TRUE(o.committed) << label << ": a short write is not an error: " << o.error;
      CheckFinal(label, o.committed);
      Restart(label, o, true);
      // A short write, then the disk is full: a clean failure.
      label += ", then ENOSPC";
      FaultFs full;
      full.Inject({.op = op, .nth = n, .kind = FaultKind::kShortThenErrno, .err = ENOSPC});
      o = Run(full, [](const Outcome&) {});
      EXPECT_TRUE(full.fired()) << label;
      EXPECT_FALSE(o.committed) << label;
      EXPECT_NE(o.error.find("No space left"), std::string::npos) << label << ": " << o.error;
      CheckFinal(label, false);
      Restart(label, o, false);
    }
  }
  std::printf("[ faults ] %s: %d calls x 3 errnos + %d short writes (alone and then ENOSPC); %d failed cleanly; "
              "%d restarts resumed\n",
              GetParam() == StoreFormat::kRaw ? "raw" : "zstd", total, writes, failed, resumed_);
}

// The process _exits before or after every call (a crash); the restarted
// receiver finds the old state or the new one, never a partial final file.
TEST_P(ArchiveFaults, CrashAtEveryCall) {
  const int total = Calls(FsOp::kAny);
  int crashed = 0;
  for (FaultKind kind : {FaultKind::kCrashBefore, FaultKind::kCrashAfter}) {
    for (int n = 1; n <= total; ++n) {
      std::string label = std::string(kind == FaultKind::kCrashBefore ? "crash before" : "crash after") +
                          " call " + std::to_string(n);
      int p[2];
      ASSERT_EQ(::pipe(p), 0);
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        ::close(p[0]);
        FaultFs fs;
        fs.Inject({.op = FsOp::kAny, .nth = n, .kind = kind, .exit_code = 86});
        (void)Run(fs, [&](const Outcome& o) {
          char line[64];
          int len = std::snprintf(line, sizeof line, "%llu %d\n", static_cast<unsigned long long>(o.acked),
                                  o.committed ? 1 : 0);
          if (::write(p[1], line, static_cast<std::size_t>(len)) != len) ::_exit(3);
        });
        ::_exit(0);
      }
      ::close(p[1]);
      std::string reported;
      char buf[256];
      for (ssize_t r; (r = ::read(p[0], buf, sizeof buf)) > 0;) reported.append(buf, static_cast<std::size_t>(r));
      ::close(p[0]);
      int status = 0;
      ASSERT_EQ(::waitpid(pid, &status, 0), pid);
      ASSERT_TRUE(WIFEXITED(status)) << label << ": child died by a signal";
      if (WEXITSTATUS(status) == 86) ++crashed;
      Outcome before;
      // The last line the child reported before it died: what it had acknowledged.
      std::size_t last = reported.rfind('\n', reported.size() >= 2 ? reported.size() - 2 : 0);
      std::string tail = reported.empty() ? "" : reported.substr(last == std::string::npos ? 0 : last + 1);
      unsigned long long acked = 0;
      int committed = 0;
      if (!tail.empty() && std::sscanf(tail.c_str(), "%llu %d", &acked, &committed) == 2) {
        before.acked = acked;
        before.committed = committed == 1;
      }
      CheckFinal(label, before.committed);
      Restart(label, before, true);
    }
  }
  EXPECT_GT(crashed, total);  // most calls were reached and crashed at
  std::printf("[ faults ] %s: %d calls x 2 crash points; %d crashed; %d restarts resumed\n",
              GetParam() == StoreFormat::kRaw ? "raw" : "zstd", total, crashed, resumed_);
}

// A same-name conflict moves the newcomer into the quarantine through the
// same seam: its info file (WriteAtomic: rename 1) and the data (RenameDurable:
// rename 2, then fsyncs). A fault at any of those steps still refuses the
// newcomer (exists-different, original intact), leaves no half-quarantined
// pair behind, and the temp data goes.
TEST_P(ArchiveFaults, QuarantineThroughTheSeam) {
  {
    FaultFs clean;
    Outcome o = Run(clean, [](const Outcome&) {});
    ASSERT_TRUE(o.committed) << o.error;
  }
  const std::string qdir = root() + "/main/quarantine";
  auto other = Pattern(data_.size(), 8);
  auto conflict = [&](FaultFs& fs, int id) -> Error {
    auto a = Archive::Open(root(), GetParam(), fs);
    EXPECT_TRUE(a.ok());
    if (!a.ok()) return a.error();
    std::string tid = "fedcba9876543210fedcba98765432" + std::to_string(10 + id);
    auto inc = (*a)->Begin({"main", "f.bin", tid, static_cast<std::int64_t>(other.size())});
    EXPECT_TRUE(inc.ok());
    if (!inc.ok()) return inc.error();
    EXPECT_TRUE((*inc)->Append(0, other, compress::Algorithm::kRaw, other).ok());
    fs.Inject(pending_);
    auto c = (*inc)->Commit(other.size(), Xxh3_128(other));
    EXPECT_FALSE(c.ok());
    return c.ok() ? Error(ErrorCode::kInternal, "committed") : c.error();
  };
  auto quarantined = [&] {
    std::vector<std::string> names;
    if (std::filesystem::exists(qdir)) {
      for (const auto& e : std::filesystem::directory_iterator(qdir)) names.push_back(e.path().filename());
    }
    return names;
  };
  int id = 0;
  for (FsOp op : {FsOp::kRename, FsOp::kFsync}) {
    for (int nth = 1; nth <= 3; ++nth) {
      const std::string label = std::string(op == FsOp::kRename ? "rename " : "fsync ") + std::to_string(nth);
      std::filesystem::remove_all(qdir);
      FaultFs fs;
      pending_ = {.op = op, .nth = nth, .err = EIO};
      Error e = conflict(fs, ++id);
      EXPECT_EQ(e.code(), ErrorCode::kExistsDifferent) << label << ": " << e.message();
      CheckFinal(label, true);
      auto names = quarantined();
      if (e.message().find("not quarantined") != std::string::npos) {
        EXPECT_TRUE(names.empty()) << label << ": half a quarantine left: " << names.size() << " file(s)";
      } else if (!names.empty()) {
        EXPECT_EQ(names.size(), 2u) << label << ": the newcomer and its info, or nothing";
      }
      if (op == FsOp::kRename && nth <= 2) {
        EXPECT_TRUE(fs.fired()) << label;
        EXPECT_NE(e.message().find("not quarantined"), std::string::npos) << label << ": " << e.message();
      }
    }
  }
  // Control: without a fault the newcomer and its info are kept.
  std::filesystem::remove_all(qdir);
  FaultFs fs;
  pending_ = {.op = FsOp::kOpen, .nth = 1000};
  Error e = conflict(fs, ++id);
  EXPECT_EQ(e.code(), ErrorCode::kExistsDifferent);
  EXPECT_NE(e.message().find("newcomer kept in quarantine/"), std::string::npos) << e.message();
  EXPECT_EQ(quarantined().size(), 2u);
  auto a = Archive::Open(root(), GetParam());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE((*a)->PurgeStale(-1).ok());
  for (const auto& d : std::filesystem::directory_iterator(root() + "/.incoming")) {
    EXPECT_EQ(d.path().filename().string().find("fedcba"), std::string::npos) << "left in .incoming: " << d.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, ArchiveFaults, ::testing::Values(StoreFormat::kRaw, StoreFormat::kZstd),
                         [](const auto& info) { return info.param == StoreFormat::kRaw ? "raw" : "zstd"; });

}  // namespace
}  // namespace walferry::archive
