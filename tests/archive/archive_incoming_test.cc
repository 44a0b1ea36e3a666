// Incoming transfers and placement on real files in a scratch directory:
// commit-only-at-the-end, resume after a crash, idempotent re-commit,
// exists-different, WAL checks, system identifiers, symlink attacks, two
// receivers at once, disk full, stale temp data.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <thread>

#include "archive/archive.h"
#include "walfmt/wal_header.h"
#include "tests/support/archive_test_util.h"
#include "core/hash.h"

namespace walferry::archive {
namespace {

using walfmt::ParseWalHeader;
using testing::Exists;
using testing::Pattern;
using testing::ReadBytes;
using testing::RealWalSegment;
using testing::WriteBytes;
using testing::TransferId;

constexpr std::size_t kChunk = 1 << 20;

// A timeline history file as PostgreSQL writes it (the receiver parses these).
std::vector<std::byte> History(const char* text = "1\t0/40000A0\tno recovery target specified\n") {
  std::string_view t(text);
  auto b = reinterpret_cast<const std::byte*>(t.data());
  return std::vector<std::byte>(b, b + t.size());
}

class ArchiveIncoming : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("archive");
    ASSERT_FALSE(dir_.empty());
    root_ = dir_ + "/root";
  }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::unique_ptr<Archive> Open(StoreFormat f = StoreFormat::kRaw) {
    auto a = Archive::Open(root_, f);
    EXPECT_TRUE(a.ok()) << a.error().message();
    return a.ok() ? std::move(a).value() : nullptr;
  }

  static TransferSpec Spec(std::string name, int id, std::int64_t size = -1,
                           std::string cluster = "main") {
    TransferSpec s;
    s.cluster = std::move(cluster);
    s.name = std::move(name);
    s.transfer_id = TransferId(id);
    s.raw_size = size;
    return s;
  }

  // Appends data[from_chunk..to_chunk) as raw frames.
  static Status AppendRange(Incoming& in, const std::vector<std::byte>& data, std::size_t from,
                            std::size_t to) {
    for (std::size_t c = from; c < to; ++c) {
      std::size_t off = c * kChunk;
      std::span<const std::byte> raw(data.data() + off, std::min(kChunk, data.size() - off));
      WF_TRY(in.Append(c, raw, compress::Algorithm::kRaw, raw));
    }
    return Status::Ok();
  }
  static std::size_t Chunks(const std::vector<std::byte>& d) { return (d.size() + kChunk - 1) / kChunk; }

  // A whole transfer; returns the Commit result.
  static Result<CommitOutcome> SendAll(Archive& a, const TransferSpec& spec,
                                       const std::vector<std::byte>& data) {
    WF_ASSIGN(auto in, a.Begin(spec));
    WF_TRY(AppendRange(*in, data, in->next_chunk(), Chunks(data)));
    WF_ASSIGN(auto synced, in->Sync());
    (void)synced;
    return in->Commit(data.size(), Xxh3_128(data));
  }

  std::string WalPath(const std::string& name, const std::string& cluster = "main") const {
    return root_ + "/" + cluster + "/wal/" + name;
  }
  std::string FilePath(const std::string& name, const std::string& cluster = "main") const {
    return root_ + "/" + cluster + "/files/" + name;
  }
  std::vector<std::string> IncomingFiles() const {
    std::vector<std::string> out;
    std::string cmd = "ls -A '" + root_ + "/.incoming'";
    FILE* p = ::popen(cmd.c_str(), "r");
    char line[512];
    while (p && std::fgets(line, sizeof line, p)) {
      std::string s(line);
      if (!s.empty() && s.back() == '\n') s.pop_back();
      out.push_back(s);
    }
    if (p) ::pclose(p);
    return out;
  }

  std::string dir_, root_;
};

TEST_F(ArchiveIncoming, RealWalSegmentIsPlacedOnlyAtCommit) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open();
  const std::string name = "000000010000000000000001";
  auto in = a->Begin(Spec(name, 1, static_cast<std::int64_t>(seg.size())));
  ASSERT_TRUE(in.ok()) << in.error().message();
  ASSERT_TRUE(AppendRange(**in, seg, 0, Chunks(seg)).ok());
  ASSERT_TRUE((*in)->Sync().ok());
  // Everything received and synced, but not committed: no final name yet.
  EXPECT_FALSE(Exists(WalPath(name)));
  EXPECT_FALSE(Exists(root_ + "/main/system_identifier"));
  EXPECT_FALSE(a->SystemIdentifier("main")->has_value());
  auto out = (*in)->Commit(seg.size(), Xxh3_128(seg));
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(*out, CommitOutcome::kPlaced);
  EXPECT_EQ(ReadBytes(WalPath(name)), seg);
  EXPECT_TRUE(IncomingFiles().empty());
  // The system identifier is recorded, durably, as decimal.
  auto info = ParseWalHeader(seg);
  auto sysid = ReadBytes(root_ + "/main/system_identifier");
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(sysid.data()), sysid.size()),
            std::to_string(info->system_id) + "\n");
  EXPECT_EQ(a->SystemIdentifier("main")->value(), info->system_id);
  EXPECT_EQ(a->SystemIdentifier("nosuch").error().code(), ErrorCode::kNotFound);
  // Find / List / Clusters / HashEntry / ReadEntry see it.
  auto e = a->Find("main", name);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->path, WalPath(name));
  EXPECT_EQ(e->format, StoreFormat::kRaw);
  EXPECT_EQ(e->kind, EntryKind::kWal);
  auto h = HashEntry(*e);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->first, seg.size());
  EXPECT_EQ(h->second, Xxh3_128(seg));
  auto list = a->List("main", EntryKind::kWal);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, name);
  EXPECT_EQ(*a->Clusters(), std::vector<std::string>{"main"});
}

TEST_F(ArchiveIncoming, RealWalSegment64MiB) {
  auto seg = RealWalSegment(64);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open();
  auto out = SendAll(*a, Spec("000000010000000000000001", 2, static_cast<std::int64_t>(seg.size())), seg);
  ASSERT_TRUE(out.ok()) << out.error().message();
  EXPECT_EQ(ReadBytes(WalPath("000000010000000000000001")), seg);
  // The same content under the 16 MiB segment number of that address is refused.
  auto wrong = SendAll(*a, Spec("000000010000000000000004", 3), seg);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code(), ErrorCode::kRefused);
  EXPECT_FALSE(Exists(WalPath("000000010000000000000004")));
  EXPECT_TRUE(IncomingFiles().empty());
}

TEST_F(ArchiveIncoming, WalChecksRefuseWrongNameSizeAndGarbage) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open();
  // Header says segment 1; name says 2.
  auto r = SendAll(*a, Spec("000000010000000000000002", 1), seg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_NE(r.error().message().find("000000010000000000000001"), std::string::npos);
  // Truncated segment.
  std::vector<std::byte> half(seg.begin(), seg.begin() + seg.size() / 2);
  r = SendAll(*a, Spec("000000010000000000000001", 2), half);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  // Announced size disagrees with the header.
  auto in = a->Begin(Spec("000000010000000000000001", 3, 1 << 20));
  ASSERT_TRUE(in.ok());
  auto st = AppendRange(**in, seg, 0, 1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
  in->reset();
  // Not WAL at all.
  r = SendAll(*a, Spec("000000010000000000000001", 4), Pattern(16 << 20, 9));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_FALSE(Exists(WalPath("000000010000000000000001")));
  EXPECT_FALSE(Exists(WalPath("000000010000000000000002")));
  EXPECT_TRUE(IncomingFiles().empty());
  // .history/.backup are WAL-directory files without WAL header checks (a
  // history file must parse as one: archive_history_test; a .partial is
  // checked as its segment: PartialSegmentCheckedAsItsSegment).
  auto hist = History();
  ASSERT_TRUE(SendAll(*a, Spec("00000002.history", 5), hist).ok());
  EXPECT_EQ(ReadBytes(WalPath("00000002.history")), hist);
}

// A .partial (the last segment of a timeline, renamed by a promotion) is that
// segment's bytes: checked as that segment (xlog_internal.h IsPartialXLogFileName).
TEST_F(ArchiveIncoming, PartialSegmentCheckedAsItsSegment) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open();
  const auto size = static_cast<std::int64_t>(seg.size());
  auto r = SendAll(*a, Spec("000000010000000000000001.partial", 1, size), seg);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(ReadBytes(WalPath("000000010000000000000001.partial")), seg);
  // The header of segment 1 under segment 2's .partial name.
  r = SendAll(*a, Spec("000000010000000000000002.partial", 2, size), seg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused) << r.error().message();
  EXPECT_NE(r.error().message().find("000000010000000000000002.partial"), std::string::npos) << r.error().message();
  // Not WAL at all.
  r = SendAll(*a, Spec("000000010000000000000003.partial", 3), Pattern(16 << 20, 9));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_FALSE(Exists(WalPath("000000010000000000000002.partial")));
  EXPECT_FALSE(Exists(WalPath("000000010000000000000003.partial")));
  // A name that only looks like one is a plain WAL-directory file.
  ASSERT_TRUE(SendAll(*a, Spec("00000001000000000000000.partial", 4), Pattern(100, 1)).ok());
}

// The first segment of a new timeline begins with its parent's pages: a real
// timeline-1 segment under the timeline-2 name of the same segment number is
// what a promoted server archives first. A header timeline above the name's
// is never written by PostgreSQL and stays refused.
TEST_F(ArchiveIncoming, NewTimelineSegmentWithParentTimelineHeaderAccepted) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open();
  auto r = SendAll(*a, Spec("000000020000000000000001", 1, static_cast<std::int64_t>(seg.size())), seg);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, CommitOutcome::kPlaced);
  EXPECT_EQ(ReadBytes(WalPath("000000020000000000000001")), seg);
  // Same segment, header timeline 3 under the name's 2.
  auto higher = seg;
  higher[4] = std::byte{3};
  r = SendAll(*a, Spec("000000020000000000000002", 2), higher);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_NE(r.error().message().find("timeline 3"), std::string::npos) << r.error().message();
  EXPECT_FALSE(Exists(WalPath("000000020000000000000002")));
}

TEST_F(ArchiveIncoming, SystemIdentifierKeepsClustersApart) {
  auto seg = RealWalSegment(16, 0);
  auto other = RealWalSegment(16, 1);
  if (seg.empty() || other.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open();
  ASSERT_TRUE(SendAll(*a, Spec("000000010000000000000001", 1), seg).ok());
  auto mine = ParseWalHeader(seg)->system_id;
  auto theirs = ParseWalHeader(other)->system_id;
  ASSERT_NE(mine, theirs);
  // The other cluster's segment 1 is refused on its first chunk...
  auto in = a->Begin(Spec("000000010000000000000001", 2));
  ASSERT_TRUE(in.ok());
  std::span<const std::byte> first(other.data(), kChunk);
  auto st = (*in)->Append(0, first, compress::Algorithm::kRaw, first);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
  EXPECT_EQ(st.error().message(), "WAL from a different cluster (system identifier " +
                                      std::to_string(theirs) + ", archive has " +
                                      std::to_string(mine) + ")");
  in->reset();
  // ... and so is a later segment of it (rewritten to segment 2).
  auto seg2 = other;
  testing::PutLe64(seg2, 8, 2ull * (16 << 20));
  auto r = SendAll(*a, Spec("000000010000000000000002", 3), seg2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_FALSE(Exists(WalPath("000000010000000000000002")));
  // Our own segment 2 is fine; another cluster directory takes the other cluster.
  auto mine2 = seg;
  testing::PutLe64(mine2, 8, 2ull * (16 << 20));
  EXPECT_TRUE(SendAll(*a, Spec("000000010000000000000002", 4), mine2).ok());
  EXPECT_TRUE(SendAll(*a, Spec("000000010000000000000002", 5, -1, "other"), seg2).ok());
  EXPECT_EQ(*a->Clusters(), (std::vector<std::string>{"main", "other"}));
}

TEST_F(ArchiveIncoming, IdenticalRecommitRewritesNothing) {
  auto a = Open();
  auto data = Pattern(3 * kChunk + 123, 1);
  ASSERT_EQ(*SendAll(*a, Spec("base.tar", 1, static_cast<std::int64_t>(data.size())), data),
            CommitOutcome::kPlaced);
  struct stat before{};
  ASSERT_EQ(::stat(FilePath("base.tar").c_str(), &before), 0);
  ::sleep(0);  // mtime granularity is fine: any rewrite changes the inode (rename)
  auto again = SendAll(*a, Spec("base.tar", 2), data);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, CommitOutcome::kAlreadyIdentical);
  struct stat after{};
  ASSERT_EQ(::stat(FilePath("base.tar").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
  EXPECT_EQ(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
  EXPECT_TRUE(IncomingFiles().empty());
}

TEST_F(ArchiveIncoming, DifferentContentKeepsOriginal) {
  auto a = Open();
  auto data = Pattern(kChunk + 5, 1);
  ASSERT_TRUE(SendAll(*a, Spec("base.tar", 1), data).ok());
  for (auto other : {Pattern(kChunk + 5, 2), Pattern(10, 3), std::vector<std::byte>{}}) {
    auto r = SendAll(*a, Spec("base.tar", 2), other);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kExistsDifferent);
    EXPECT_EQ(r.error().message().rfind("base.tar already archived with different content; original kept; ", 0), 0u)
        << r.error().message();
    EXPECT_NE(r.error().message().find("likely cause: "), std::string::npos) << r.error().message();
    EXPECT_EQ(ReadBytes(FilePath("base.tar")), data);
    EXPECT_TRUE(IncomingFiles().empty());
  }
}

// Same segment name, different content: refused, original intact, the
// newcomer kept once in a bounded quarantine, and the message says where the
// copies differ (byte offset, LSN), both hashes, both system ids and a cause.
TEST_F(ArchiveIncoming, ConflictGoesToQuarantineWithForensics) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  auto a = Open(StoreFormat::kZstd);
  const std::string name = "000000010000000000000001";
  ASSERT_TRUE(SendAll(*a, Spec(name, 1), seg).ok());
  auto other = seg;
  other[100000] ^= std::byte{0x40};
  auto r = SendAll(*a, Spec(name, 2), other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kExistsDifferent);
  const std::string& m = r.error().message();
  const auto sysid = std::to_string(ParseWalHeader(seg)->system_id);
  for (const std::string& want :
       {std::string("original kept"), std::string("first difference at byte 100000"),
        std::string("(LSN 0/10186A0)"), "archive " + Xxh3_128(seg).Hex(), "newcomer " + Xxh3_128(other).Hex(),
        "system identifier archive " + sysid + ", newcomer " + sysid, std::string("likely cause: two servers wrote timeline 1"),
        std::string("newcomer kept in quarantine/")}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << " not in: " << m;
  }
  EXPECT_EQ(m.find('\n'), std::string::npos);
  EXPECT_EQ(ReadBytes(WalPath(name + ".zst")).empty(), false);
  auto e = a->Find("main", name);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(HashEntry(*e)->second, Xxh3_128(seg));  // original intact
  auto q = ListQuarantine(*a, "main");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 1u);
  EXPECT_EQ((*q)[0].name, name);
  EXPECT_EQ((*q)[0].size, other.size());
  EXPECT_NE((*q)[0].details.find("first difference at byte 100000"), std::string::npos);
  StoredEntry qe{(*q)[0].file, root_ + "/main/quarantine/" + (*q)[0].file, StoreFormat::kZstd, EntryKind::kWal};
  EXPECT_EQ(HashEntry(qe)->second, Xxh3_128(other));  // the newcomer, as received
  EXPECT_TRUE(IncomingFiles().empty());
  // The same newcomer again (archive_command retries): kept once.
  r = SendAll(*a, Spec(name, 3), other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("already in quarantine/"), std::string::npos) << r.error().message();
  EXPECT_EQ(ListQuarantine(*a, "main")->size(), 1u);
  // The cap: a third version does not fit in 1 byte.
  a->SetQuarantineCap(1);
  other[200000] ^= std::byte{1};
  r = SendAll(*a, Spec(name, 4), other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kExistsDifferent);
  EXPECT_NE(r.error().message().find("quarantine full"), std::string::npos) << r.error().message();
  EXPECT_EQ(ListQuarantine(*a, "main")->size(), 1u);
  EXPECT_TRUE(IncomingFiles().empty());
  EXPECT_EQ(HashEntry(*e)->second, Xxh3_128(seg));
}

TEST_F(ArchiveIncoming, EmptyFile) {
  auto a = Open();
  std::vector<std::byte> empty;
  auto r = SendAll(*a, Spec("empty", 1, 0), empty);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(Exists(FilePath("empty")));
  EXPECT_TRUE(ReadBytes(FilePath("empty")).empty());
  EXPECT_EQ(*SendAll(*a, Spec("empty", 2, 0), empty), CommitOutcome::kAlreadyIdentical);
}

TEST_F(ArchiveIncoming, HashOrSizeMismatchStoresNothing) {
  auto a = Open();
  auto data = Pattern(2 * kChunk, 4);
  {
    auto in = a->Begin(Spec("f", 1));
    ASSERT_TRUE(AppendRange(**in, data, 0, 2).ok());
    auto bad = Xxh3_128(data);
    bad.low ^= 1;
    auto r = (*in)->Commit(data.size(), bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
    // The Incoming is finished: further use fails, nothing left behind.
    EXPECT_FALSE((*in)->Sync().ok());
  }
  {
    auto in = a->Begin(Spec("f", 2));
    ASSERT_TRUE(AppendRange(**in, data, 0, 2).ok());
    auto r = (*in)->Commit(data.size() + 1, Xxh3_128(data));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  }
  {
    // Announced size at Begin disagrees with what arrived.
    auto in = a->Begin(Spec("f", 3, 5));
    ASSERT_TRUE(AppendRange(**in, data, 0, 2).ok());
    auto r = (*in)->Commit(data.size(), Xxh3_128(data));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kCorrupt);
  }
  EXPECT_FALSE(Exists(FilePath("f")));
  EXPECT_TRUE(IncomingFiles().empty());
}

TEST_F(ArchiveIncoming, OutOfOrderChunkRefused) {
  auto a = Open();
  auto data = Pattern(3 * kChunk, 5);
  auto in = a->Begin(Spec("f", 1));
  ASSERT_TRUE(in.ok());
  std::span<const std::byte> c1(data.data() + kChunk, kChunk);
  auto st = (*in)->Append(1, c1, compress::Algorithm::kRaw, c1);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kProtocol);
  // Still usable in order afterwards.
  ASSERT_TRUE(AppendRange(**in, data, 0, 3).ok());
  EXPECT_EQ(*(*in)->Commit(data.size(), Xxh3_128(data)), CommitOutcome::kPlaced);
}

TEST_F(ArchiveIncoming, ResumesFromDurablePointAfterCrash) {
  auto data = Pattern(6 * kChunk + 77, 6);
  {
    auto a = Open();
    auto in = a->Begin(Spec("big", 1, static_cast<std::int64_t>(data.size())));
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE(AppendRange(**in, data, 0, 3).ok());
    EXPECT_EQ(*(*in)->Sync(), 3u);
    EXPECT_EQ(*(*in)->Sync(), 3u);  // cheap when nothing changed
    // Two more chunks reach the file but are never made durable; then the
    // receiver "dies" (the Incoming and Archive go away without Commit).
    ASSERT_TRUE(AppendRange(**in, data, 3, 5).ok());
  }
  EXPECT_FALSE(Exists(FilePath("big")));
  auto a = Open();
  auto in = a->Begin(Spec("big", 1, static_cast<std::int64_t>(data.size())));
  ASSERT_TRUE(in.ok()) << in.error().message();
  EXPECT_EQ((*in)->next_chunk(), 3u);
  EXPECT_EQ((*in)->next_raw_offset(), 3 * kChunk);
  ASSERT_TRUE(AppendRange(**in, data, 3, Chunks(data)).ok());
  auto r = (*in)->Commit(data.size(), Xxh3_128(data));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(ReadBytes(FilePath("big")), data);
  EXPECT_TRUE(IncomingFiles().empty());
}

TEST_F(ArchiveIncoming, ResumeOfWalSegmentKeepsHeaderChecks) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  const std::string name = "000000010000000000000001";
  {
    auto a = Open();
    auto in = a->Begin(Spec(name, 1));
    ASSERT_TRUE(AppendRange(**in, seg, 0, 4).ok());
    ASSERT_TRUE((*in)->Sync().ok());
  }
  auto a = Open();
  auto in = a->Begin(Spec(name, 1));
  ASSERT_EQ((*in)->next_chunk(), 4u);
  ASSERT_TRUE(AppendRange(**in, seg, 4, Chunks(seg)).ok());
  ASSERT_EQ(*(*in)->Commit(seg.size(), Xxh3_128(seg)), CommitOutcome::kPlaced);
  EXPECT_TRUE(Exists(root_ + "/main/system_identifier"));
}

TEST_F(ArchiveIncoming, CorruptOrForeignManifestStartsOver) {
  auto data = Pattern(4 * kChunk, 7);
  const std::string state = root_ + "/.incoming/" + TransferId(1) + ".state";
  for (int variant = 0; variant < 5; ++variant) {
    {
      auto a = Open();
      auto in = a->Begin(Spec("f" + std::to_string(variant), 1));
      ASSERT_TRUE(in.ok()) << in.error().message();
      ASSERT_TRUE(AppendRange(**in, data, 0, 2).ok());
      ASSERT_TRUE((*in)->Sync().ok());
    }
    auto m = ReadBytes(state);
    ASSERT_FALSE(m.empty());
    TransferSpec spec = Spec("f" + std::to_string(variant), 1);
    switch (variant) {
      case 0: m[m.size() / 2] ^= std::byte{1}; break;          // flipped bit
      case 1: m.resize(m.size() / 3); break;                    // torn write
      case 2: m.assign(m.size(), std::byte{0}); break;          // zeroed
      case 3: spec.name = "other-name"; break;                  // same id, other name
      case 4: ::truncate((root_ + "/.incoming/" + TransferId(1) + ".data").c_str(), 10); break;  // data lost
    }
    WriteBytes(state, m);
    auto a = Open();
    auto in = a->Begin(spec);
    ASSERT_TRUE(in.ok()) << in.error().message();
    EXPECT_EQ((*in)->next_chunk(), 0u) << variant;
    ASSERT_TRUE(AppendRange(**in, data, 0, Chunks(data)).ok());
    ASSERT_EQ(*(*in)->Commit(data.size(), Xxh3_128(data)), CommitOutcome::kPlaced) << variant;
    EXPECT_EQ(ReadBytes(FilePath(spec.name)), data);
    EXPECT_TRUE(IncomingFiles().empty()) << variant;
  }
}

TEST_F(ArchiveIncoming, SecondBeginOfSameNameRefused) {
  auto a = Open();
  auto first = a->Begin(Spec("base.tar", 1));
  ASSERT_TRUE(first.ok());
  for (auto spec : {Spec("base.tar", 2), Spec("base.tar", 1), Spec("other", 1)}) {
    auto second = a->Begin(spec);
    ASSERT_FALSE(second.ok());
    EXPECT_EQ(second.error().code(), ErrorCode::kRefused);
  }
  EXPECT_EQ(a->Begin(Spec("base.tar", 2)).error().message(),
            "transfer of base.tar already in progress");
  // Another cluster's file of the same name is independent.
  EXPECT_TRUE(a->Begin(Spec("base.tar", 3, -1, "other")).ok());
  first->reset();
  EXPECT_TRUE(a->Begin(Spec("base.tar", 2)).ok());
}

TEST_F(ArchiveIncoming, ConcurrentBeginsFromThreads) {
  auto a = Open();
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::unique_ptr<Incoming>> keep(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto in = a->Begin(Spec("same", 100 + i));
      if (in.ok()) {
        ++ok;
        keep[i] = std::move(in).value();
      } else if (in.error().code() == ErrorCode::kRefused) {
        ++refused;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(refused.load(), 7);
}

TEST_F(ArchiveIncoming, SecondReceiverProcessCannotTakeSameTransfer) {
  auto a = Open();
  auto in = a->Begin(Spec("base.tar", 1));
  ASSERT_TRUE(in.ok());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto b = Archive::Open(root_, StoreFormat::kRaw);
    if (!b.ok()) ::_exit(10);
    auto other = (*b)->Begin(Spec("base.tar", 1));
    if (other.ok()) ::_exit(11);
    if (other.error().code() != ErrorCode::kRefused) ::_exit(12);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(ArchiveIncoming, SymlinkedClusterDirIsRefused) {
  auto a = Open();
  const std::string elsewhere = dir_ + "/elsewhere";
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (root_ + "/main").c_str()), 0);
  auto data = Pattern(1000, 1);
  auto r = SendAll(*a, Spec("base.tar", 1), data);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_NE(r.error().message().find("symlink"), std::string::npos);
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + elsewhere + "')\"").c_str()), 0)
      << "something was written through the symlink";
  auto f = a->Find("main", "base.tar");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code(), ErrorCode::kRefused);
  EXPECT_TRUE(a->Clusters()->empty());  // a symlink is not a cluster directory
}

TEST_F(ArchiveIncoming, SymlinkedWalDirAndEntriesAreRefused) {
  auto a = Open();
  const std::string elsewhere = dir_ + "/elsewhere";
  ASSERT_EQ(::mkdir(elsewhere.c_str(), 0700), 0);
  ASSERT_EQ(::mkdir((root_ + "/main").c_str(), 0700), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (root_ + "/main/wal").c_str()), 0);
  auto r = SendAll(*a, Spec("00000002.history", 1), History());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + elsewhere + "')\"").c_str()), 0);
  // A symlinked entry under files/ is neither found nor listed, and a commit
  // of that name does not write through it.
  ASSERT_EQ(::mkdir((root_ + "/main/files").c_str(), 0700), 0);
  const std::string target = elsewhere + "/target";
  WriteBytes(target, Pattern(10, 2));
  ASSERT_EQ(::symlink(target.c_str(), FilePath("x").c_str()), 0);
  EXPECT_EQ(a->Find("main", "x").error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(a->List("main", EntryKind::kFile)->empty());
  auto c = SendAll(*a, Spec("x", 2), Pattern(10, 3));
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(ReadBytes(target), Pattern(10, 2));
  // A symlinked .incoming is refused at Open.
  testing::RemoveTree(root_);
  ASSERT_EQ(::mkdir(root_.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(elsewhere.c_str(), (root_ + "/.incoming").c_str()), 0);
  auto bad = Archive::Open(root_, StoreFormat::kRaw);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kRefused);
}

TEST_F(ArchiveIncoming, SymlinksPlantedInIncomingAreNotFollowed) {
  auto a = Open();
  const std::string target = dir_ + "/victim";
  auto original = Pattern(100, 1);
  WriteBytes(target, original);
  ASSERT_EQ(::symlink(target.c_str(), (root_ + "/.incoming/" + TransferId(1) + ".data").c_str()),
            0);
  auto r = a->Begin(Spec("f", 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  // A symlinked manifest is not read; the transfer starts over and replaces
  // the link itself, never the file it points to.
  ASSERT_EQ(::symlink(target.c_str(), (root_ + "/.incoming/" + TransferId(2) + ".state").c_str()),
            0);
  auto in = a->Begin(Spec("g", 2));
  ASSERT_TRUE(in.ok()) << in.error().message();
  EXPECT_EQ((*in)->next_chunk(), 0u);
  ASSERT_TRUE(AppendRange(**in, Pattern(10, 2), 0, 1).ok());
  ASSERT_TRUE((*in)->Sync().ok());
  EXPECT_EQ(ReadBytes(target), original);
}

TEST_F(ArchiveIncoming, RootReachedThroughSymlinkWorks) {
  const std::string real = dir_ + "/real";
  ASSERT_EQ(::mkdir(real.c_str(), 0700), 0);
  ASSERT_EQ(::symlink(real.c_str(), root_.c_str()), 0);
  auto a = Open();
  ASSERT_TRUE(a);
  ASSERT_TRUE(SendAll(*a, Spec("f", 1), Pattern(10, 1)).ok());
  EXPECT_TRUE(Exists(real + "/main/files/f"));
}

TEST_F(ArchiveIncoming, OpenCreatesRootWithParents) {
  root_ = dir_ + "/a/b/c";
  auto a = Open();
  ASSERT_TRUE(a);
  struct stat st{};
  ASSERT_EQ(::stat((root_ + "/.incoming").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(a->root(), root_);
  // A relative root becomes absolute.
  ASSERT_EQ(::chdir(dir_.c_str()), 0);
  auto rel = Archive::Open("rel/root", StoreFormat::kZstd);
  ASSERT_TRUE(rel.ok());
  EXPECT_EQ((*rel)->root(), dir_ + "/rel/root");
  EXPECT_EQ((*rel)->format(), StoreFormat::kZstd);
  ASSERT_EQ(::chdir("/"), 0);
}

TEST_F(ArchiveIncoming, RefusesBadSpecs) {
  auto a = Open();
  for (auto spec : {Spec("../x", 1), Spec("a/b", 1), Spec(".hidden", 1), Spec("ok", 1, -1, "../x"),
                    Spec("ok", 1, -1, ".incoming"), Spec("ok", 1, -1, "")}) {
    auto r = a->Begin(spec);
    ASSERT_FALSE(r.ok()) << spec.cluster << "/" << spec.name;
    EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
  }
  auto spec = Spec("ok", 1);
  spec.transfer_id = "../../etc/passwd";
  EXPECT_FALSE(a->Begin(spec).ok());
  // A raw store cannot tell a raw "x.gz" from a gzip-stored "x".
  EXPECT_EQ(a->Begin(Spec("backup.tar.gz", 2)).error().code(), ErrorCode::kRefused);
  EXPECT_TRUE(Open(StoreFormat::kZstd)->Begin(Spec("backup.tar.gz", 3)).ok());
}

TEST_F(ArchiveIncoming, ListSortsAndSeparatesKinds) {
  auto a = Open();
  for (const char* n : {"zz", "aa", "mm"}) ASSERT_TRUE(SendAll(*a, Spec(n, 1), Pattern(5, 1)).ok());
  ASSERT_TRUE(SendAll(*a, Spec("00000003.history", 2), History("1\t0/1\tr\n2\t0/2\tr\n")).ok());
  auto files = a->List("main", EntryKind::kFile);
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].name, "aa");
  EXPECT_EQ((*files)[2].name, "zz");
  auto wal = a->List("main", EntryKind::kWal);
  ASSERT_EQ(wal->size(), 1u);
  EXPECT_EQ((*wal)[0].path, WalPath("00000003.history"));
  EXPECT_EQ(a->List("nosuch", EntryKind::kWal).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(a->Find("main", "nosuch").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(a->Find("nosuch", "aa").error().code(), ErrorCode::kNotFound);
}

TEST_F(ArchiveIncoming, PurgeStaleRemovesOnlyOldIdleTransfers) {
  auto a = Open();
  auto data = Pattern(2 * kChunk, 8);
  {
    auto in = a->Begin(Spec("old", 1));
    ASSERT_TRUE(AppendRange(**in, data, 0, 1).ok());
    ASSERT_TRUE((*in)->Sync().ok());
  }
  auto active = a->Begin(Spec("active", 2));
  ASSERT_TRUE(active.ok());
  {
    auto in = a->Begin(Spec("fresh", 3));
    ASSERT_TRUE((*in)->Sync().ok());
  }
  // Age "old" and "active" by an hour.
  struct timespec old_times[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  for (const auto& f :
       {TransferId(1) + ".data", TransferId(1) + ".state", TransferId(2) + ".data"}) {
    ASSERT_EQ(::utimensat(AT_FDCWD, (root_ + "/.incoming/" + f).c_str(), old_times, 0), 0) << f;
  }
  ASSERT_TRUE(a->PurgeStale(600).ok());
  auto left = IncomingFiles();
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{TransferId(2) + ".data", TransferId(3) + ".data",
                                             TransferId(3) + ".state"}));
  // The purged transfer starts over.
  auto again = a->Begin(Spec("old", 1));
  EXPECT_EQ((*again)->next_chunk(), 0u);
}

TEST_F(ArchiveIncoming, AbandonRemovesTempData) {
  auto a = Open();
  auto in = a->Begin(Spec("f", 1));
  ASSERT_TRUE(AppendRange(**in, Pattern(kChunk, 1), 0, 1).ok());
  ASSERT_TRUE((*in)->Sync().ok());
  (*in)->Abandon();
  EXPECT_TRUE(IncomingFiles().empty());
  in->reset();
  EXPECT_EQ((*a->Begin(Spec("f", 1)))->next_chunk(), 0u);
}

// Disk full: a root on a 1 MiB tmpfs.
TEST_F(ArchiveIncoming, DiskFullCleansUpAndPlacesNothing) {
  const std::string mnt = dir_ + "/small";
  ASSERT_EQ(::mkdir(mnt.c_str(), 0700), 0);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  auto ar = Archive::Open(mnt + "/root", StoreFormat::kRaw);
  ASSERT_TRUE(ar.ok()) << ar.error().message();
  auto data = Pattern(3 * kChunk, 9);
  auto in = (*ar)->Begin(Spec("big", 1));
  ASSERT_TRUE(in.ok());
  Status st = AppendRange(**in, data, 0, Chunks(data));
  if (st.ok()) {
    auto s = (*in)->Sync();
    st = s.ok() ? Status::Ok() : Status(s.error());
  }
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNoSpace);
  EXPECT_NE(st.error().message().find("disk full"), std::string::npos) << st.error().message();
  EXPECT_EQ(st.error().message().find('\n'), std::string::npos);
  EXPECT_FALSE(Exists(mnt + "/root/main/files/big"));
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + mnt + "/root/.incoming')\"").c_str()), 0);
  in->reset();
  // After the failure, a small file still fits and is placed normally.
  auto small = Pattern(1000, 1);
  auto r = SendAll(**ar, Spec("small", 2), small);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(ReadBytes(mnt + "/root/main/files/small"), small);
}

// A tmpfs of `size` mounted under the test's scratch dir (unmounted at exit).
class SmallTmpfs {
 public:
  SmallTmpfs(const std::string& dir, const char* size) : path_(dir + "/small") {
    ::mkdir(path_.c_str(), 0700);
    std::string opts = std::string("size=") + size;
    mounted_ = ::mount("tmpfs", path_.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallTmpfs() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }
  // Fills the filesystem so that exactly `left` bytes stay free.
  bool FillLeaving(std::uint64_t left) {
    struct statvfs vfs{};
    if (::statvfs(path_.c_str(), &vfs) != 0) return false;
    std::uint64_t avail = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < left) return false;
    int fd = ::open((path_ + "/filler").c_str(), O_WRONLY | O_CREAT, 0600);
    if (fd < 0) return false;
    int rc = avail == left ? 0 : ::posix_fallocate(fd, 0, static_cast<off_t>(avail - left));
    ::close(fd);
    return rc == 0;
  }

 private:
  std::string path_, error_;
  bool mounted_ = false;
};

// Disk full while persisting the resume manifest (Sync), not while writing data.
TEST_F(ArchiveIncoming, DiskFullAtSyncCleansUp) {
  SmallTmpfs fs(dir_, "1m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << fs.error();
  auto ar = Archive::Open(fs.path() + "/root", StoreFormat::kRaw);
  ASSERT_TRUE(ar.ok());
  auto in = (*ar)->Begin(Spec("f", 1));
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(fs.FillLeaving(4096));
  auto page = Pattern(4096, 3);
  ASSERT_TRUE((*in)->Append(0, page, compress::Algorithm::kRaw, page).ok());  // uses the last page
  auto st = (*in)->Sync();                                                    // manifest: no room
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNoSpace);
  EXPECT_NE(st.error().message().find("disk full"), std::string::npos) << st.error().message();
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + fs.path() + "/root/.incoming')\"").c_str()), 0);
  EXPECT_FALSE(Exists(fs.path() + "/root/main/files/f"));
}

// Disk full while recording the cluster's system identifier at the first commit.
TEST_F(ArchiveIncoming, DiskFullAtCommitCleansUp) {
  auto seg = RealWalSegment(16);
  if (seg.empty()) GTEST_SKIP() << "PostgreSQL initdb not available";
  SmallTmpfs fs(dir_, "20m");
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here: " << fs.error();
  auto ar = Archive::Open(fs.path() + "/root", StoreFormat::kRaw);
  ASSERT_TRUE(ar.ok());
  const std::string name = "000000010000000000000001";
  auto in = (*ar)->Begin(Spec(name, 1, static_cast<std::int64_t>(seg.size())));
  ASSERT_TRUE(in.ok());
  ASSERT_TRUE(fs.FillLeaving(seg.size()));
  ASSERT_TRUE(AppendRange(**in, seg, 0, Chunks(seg)).ok());  // exactly fills the disk
  auto r = (*in)->Commit(seg.size(), Xxh3_128(seg));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNoSpace) << r.error().message();
  EXPECT_FALSE(Exists(fs.path() + "/root/main/wal/" + name));
  EXPECT_FALSE(Exists(fs.path() + "/root/main/system_identifier"));
  EXPECT_EQ(std::system(("test -z \"$(ls -A '" + fs.path() + "/root/.incoming')\"").c_str()), 0);
  // With space again, the same segment goes in.
  ASSERT_EQ(::unlink((fs.path() + "/filler").c_str()), 0);
  in->reset();
  ASSERT_EQ(*SendAll(**ar, Spec(name, 2), seg), CommitOutcome::kPlaced);
  EXPECT_TRUE(Exists(fs.path() + "/root/main/system_identifier"));
}

}  // namespace
}  // namespace walferry::archive
