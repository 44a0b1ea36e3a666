// get / prefetch / cleanup / verify on a local archive filled by hand with
// synthetic 1 MiB WAL segments (valid long page headers), raw and zstd.
#include "pg/archive_ops.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "core/fd.h"
#include "core/stream.h"
#include "walfmt/wal_names.h"

namespace walferry::pg {
namespace {

namespace fs = std::filesystem;
using walfmt::FormatSegmentName;
using walfmt::ParseSegmentName;
constexpr std::uint32_t kSeg = 1u << 20;

template <typename T>
void Put(std::string& s, std::size_t off, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) s[off + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// A segment whose first page has a PostgreSQL 15 long header naming it.
std::string Segment(const std::string& name, unsigned seed) {
  auto s = *ParseSegmentName(name);
  std::string d(kSeg, '\0');
  std::mt19937 rng(seed);
  for (std::size_t i = 64; i < d.size(); i += 97) d[i] = static_cast<char>(rng());
  Put<std::uint16_t>(d, 0, 0xD110);  // XLOG_PAGE_MAGIC of 15
  Put<std::uint16_t>(d, 2, 0x0002);  // XLP_LONG_HEADER
  Put<std::uint32_t>(d, 4, s.timeline);
  Put<std::uint64_t>(d, 8, SegmentNumber(s, 4096) * kSeg);
  Put<std::uint64_t>(d, 24, 7301234567890123456ull);
  Put<std::uint32_t>(d, 32, kSeg);
  Put<std::uint32_t>(d, 36, 8192);
  return d;
}

class ArchiveOps : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wf-pg-ops-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    root_ = dir_ / "root";
    fs::create_directories(root_ / "main" / "wal");
    fs::create_directories(root_ / "main" / "files");
    fs::create_directories(dir_ / "pg_wal");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Store(const std::string& name, const std::string& content, bool zstd = false) {
    fs::path p = root_ / "main" / "wal" / name;
    std::ofstream(p, std::ios::binary) << content;
    if (zstd) {
      ASSERT_EQ(std::system(("zstd -q --rm -f " + p.string()).c_str()), 0);
    }
  }
  std::unique_ptr<archive::Archive> Open() {
    auto a = archive::Archive::Open(root_.string(), archive::StoreFormat::kZstd);
    EXPECT_TRUE(a.ok()) << a.error().message();
    return std::move(a).value();
  }
  std::string Read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  GetOptions Get(const std::string& name) {
    GetOptions o;
    o.name = name;
    o.dest = (dir_ / "pg_wal" / "RECOVERYXLOG").string();
    o.cluster = "main";
    o.prefetch = 4;
    return o;  // o.self empty: no background worker in unit tests
  }

  fs::path dir_, root_;
};

TEST_F(ArchiveOps, GetRawAndZstdByteIdentical) {
  const std::string a = "000000010000000000000001", b = "000000010000000000000002";
  Store(a, Segment(a, 1));
  Store(b, Segment(b, 2), /*zstd=*/true);
  auto arch = Open();
  for (const auto& [name, seed] : {std::pair{a, 1u}, std::pair{b, 2u}}) {
    ASSERT_TRUE(GetFromArchive(*LocalSource(*arch, "main"), Get(name)).ok());
    EXPECT_EQ(Read(dir_ / "pg_wal" / "RECOVERYXLOG"), Segment(name, seed));
  }
  Store("00000002.history", "1\t0/3000000\tno recovery target specified\n");
  ASSERT_TRUE(GetFromArchive(*LocalSource(*arch, "main"), Get("00000002.history")).ok());
  EXPECT_EQ(Read(dir_ / "pg_wal" / "RECOVERYXLOG"), "1\t0/3000000\tno recovery target specified\n");
}

// `get` of the first segment of timeline 2, whose first page still carries
// timeline 1 (a promotion copies the parent's last segment): restored as is.
// A first page of timeline 3 under the name's timeline 2 is corrupt.
TEST_F(ArchiveOps, GetNewTimelineSegmentWithParentTimelineHeader) {
  const std::string parent = "000000010000000000000003", child = "000000020000000000000003";
  Store(child, Segment(parent, 7));
  Store("000000020000000000000004", Segment("000000030000000000000004", 9));
  auto arch = Open();
  auto st = GetFromArchive(*LocalSource(*arch, "main"), Get(child));
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(Read(dir_ / "pg_wal" / "RECOVERYXLOG"), Segment(parent, 7));
  st = GetFromArchive(*LocalSource(*arch, "main"), Get("000000020000000000000004"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt);
}

TEST_F(ArchiveOps, MissingIsNotFoundAndWritesNothing) {
  auto arch = Open();
  auto st = GetFromArchive(*LocalSource(*arch, "main"), Get("000000010000000000000009"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ / "pg_wal" / "RECOVERYXLOG"));
  EXPECT_EQ(GetFromArchive(*LocalSource(*arch, "main"), Get("00000003.history")).error().code(), ErrorCode::kNotFound);
}

TEST_F(ArchiveOps, CorruptEntriesAreErrorsNotNotFound) {
  const std::string a = "000000010000000000000003", b = "000000010000000000000004",
                    c = "000000010000000000000005";
  Store(a, Segment("000000010000000000000007", 3));  // header names another segment
  std::string truncated = Segment(b, 4);
  truncated.resize(kSeg / 2);
  Store(b, truncated);
  Store(c, Segment(c, 5), /*zstd=*/true);
  {  // flip a byte inside the zstd frame
    fs::path p = root_ / "main" / "wal" / (c + ".zst");
    std::string z = Read(p);
    z[z.size() / 2] ^= 0x40;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << z;
  }
  auto arch = Open();
  for (const auto& n : {a, b, c}) {
    auto st = GetFromArchive(*LocalSource(*arch, "main"), Get(n));
    ASSERT_FALSE(st.ok()) << n;
    EXPECT_NE(st.error().code(), ErrorCode::kNotFound) << n;
    EXPECT_FALSE(fs::exists(dir_ / "pg_wal" / "RECOVERYXLOG")) << n;
  }
}

TEST_F(ArchiveOps, PrefetchThenUseVerifiedCopy) {
  std::vector<std::string> names;
  for (int i = 1; i <= 6; ++i) {
    names.push_back(FormatSegmentName({1, 0, static_cast<std::uint32_t>(i)}));
    Store(names.back(), Segment(names.back(), i), i % 2 == 0);
  }
  auto arch = Open();
  // The default cache: under the cache home, never inside PGDATA (here dir_).
  const std::string cache_home = dir_.string() + "-cache";
  setenv("XDG_CACHE_HOME", cache_home.c_str(), 1);
  const std::string pdir = DefaultPrefetchDir(Get(names[0]).dest);
  // A cache home inside PGDATA is not used: the sibling directory is.
  setenv("XDG_CACHE_HOME", (dir_ / "cache").c_str(), 1);
  EXPECT_EQ(DefaultPrefetchDir(Get(names[0]).dest), dir_.string() + ".walferry-prefetch");
  unsetenv("XDG_CACHE_HOME");
  struct CacheCleanup {
    std::string dir;
    ~CacheCleanup() { fs::remove_all(dir); }
  } cleanup{cache_home};
  EXPECT_EQ(pdir.rfind(cache_home + "/walferry/prefetch/", 0), 0u) << pdir;
  ASSERT_TRUE(PrefetchSegments(*LocalSource(*arch, "main"), names[0], kSeg, 3, pdir).ok());
  for (int i = 1; i <= 3; ++i) EXPECT_TRUE(fs::exists(pdir + "/" + names[i])) << i;
  EXPECT_FALSE(fs::exists(pdir + "/" + names[4]));
  // The archive copy goes away: get must be served from the verified prefetch.
  fs::remove(root_ / "main" / "wal" / (names[1] + ".zst"));
  auto from_cache = Get(names[1]);
  from_cache.prefetch_dir = pdir;
  ASSERT_TRUE(GetFromArchive(*LocalSource(*arch, "main"), from_cache).ok());
  EXPECT_EQ(Read(dir_ / "pg_wal" / "RECOVERYXLOG"), Segment(names[1], 2));
  EXPECT_FALSE(fs::exists(pdir + "/" + names[1]));  // consumed
  // A tampered prefetched copy is dropped and the archive used instead.
  {
    std::fstream f(pdir + "/" + names[2], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(5000);
    f.put('\x5a');
  }
  auto tampered = Get(names[2]);
  tampered.prefetch_dir = pdir;
  ASSERT_TRUE(GetFromArchive(*LocalSource(*arch, "main"), tampered).ok());
  EXPECT_EQ(Read(dir_ / "pg_wal" / "RECOVERYXLOG"), Segment(names[2], 3));
  EXPECT_FALSE(fs::exists(pdir + "/" + names[2]));
  // The next worker run drops what PostgreSQL has gone past and stops at the
  // first segment not archived yet.
  ASSERT_TRUE(PrefetchSegments(*LocalSource(*arch, "main"), names[3], kSeg, 8, pdir).ok());
  EXPECT_FALSE(fs::exists(pdir + "/" + names[3]));
  EXPECT_TRUE(fs::exists(pdir + "/" + names[4]));
  EXPECT_TRUE(fs::exists(pdir + "/" + names[5]));
}

TEST_F(ArchiveOps, CleanupRemovesOnlyOlder) {
  for (int i = 1; i <= 5; ++i) {
    auto n = FormatSegmentName({1, 0, static_cast<std::uint32_t>(i)});
    Store(n, Segment(n, i), i == 2);
  }
  Store("00000001.history", "x");
  Store("000000010000000000000002.00000028.backup", "START WAL LOCATION: 0/2000028\n");
  auto arch = Open();
  auto r = CleanupArchive(*arch, "main", "000000010000000000000004", /*dry_run=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->removed.size(), 4u);
  EXPECT_TRUE(fs::exists(root_ / "main" / "wal" / "000000010000000000000001"));
  r = CleanupArchive(*arch, "main", "000000010000000000000004", false);
  ASSERT_TRUE(r.ok());
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(root_ / "main" / "wal")) left.insert(e.path().filename());
  EXPECT_EQ(left, (std::set<std::string>{"00000001.history", "000000010000000000000004",
                                         "000000010000000000000005"}));
  EXPECT_FALSE(CleanupArchive(*arch, "main", "garbage", false).ok());
}

TEST_F(ArchiveOps, InspectFindsHolesAndCorruption) {
  for (int i = 1; i <= 6; ++i) {
    if (i == 3 || i == 4) continue;  // the hole
    auto n = FormatSegmentName({1, 0, static_cast<std::uint32_t>(i)});
    Store(n, Segment(n, i), /*zstd=*/true);
  }
  auto arch = Open();
  auto ok = InspectArchive(*arch, {}, true);
  ASSERT_TRUE(ok.ok());
  ASSERT_EQ(ok->size(), 1u);
  EXPECT_EQ((*ok)[0].segment_size, kSeg);
  ASSERT_EQ((*ok)[0].gaps.size(), 1u);
  EXPECT_NE((*ok)[0].gaps[0].find("000000010000000000000003..000000010000000000000004"),
            std::string::npos);
  EXPECT_TRUE((*ok)[0].problems.empty());
  EXPECT_EQ((*ok)[0].newest_segment, "000000010000000000000006");
  fs::path p = root_ / "main" / "wal" / "000000010000000000000005.zst";
  std::string z = Read(p);
  z[z.size() - 3] ^= 1;  // inside the content checksum
  std::ofstream(p, std::ios::binary | std::ios::trunc) << z;
  auto bad = InspectArchive(*arch, {"main"}, true);
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ((*bad)[0].problems.size(), 1u);
  EXPECT_EQ((*bad)[0].problems[0].rfind("000000010000000000000005", 0), 0u);
  // status mode: no full read, so no corruption found, but the hole is.
  auto quick = InspectArchive(*arch, {}, false);
  ASSERT_TRUE(quick.ok());
  EXPECT_EQ((*quick)[0].gaps.size(), 1u);
  EXPECT_EQ((*quick)[0].segment_size, kSeg);
}

}  // namespace
}  // namespace walferry::pg
