// The S3 archive backend (store_s3) against a real Ceph radosgw: exactly-once
// creation with 16 racing archives (separate "gateways") for single-PUT and
// multipart objects, resume from stored parts after a lost Incoming, the
// whole-stream XXH3-128 checked on read, abandoned uploads aborted.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "core/hash.h"
#include "s3/client.h"
#include "tests/support/s3_rgw_env.h"
#include "store_s3/s3_archive.h"

namespace walferry::store_s3 {
namespace {

using archive::CommitOutcome;

std::string Hex32(std::mt19937_64& r) {
  char b[33];
  std::snprintf(b, sizeof b, "%016llx%016llx", static_cast<unsigned long long>(r()), static_cast<unsigned long long>(r()));
  return b;
}

struct StringSink : ByteSink {
  std::string s;
  Status Write(std::span<const std::byte> d) override {
    s.append(reinterpret_cast<const char*>(d.data()), d.size());
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
};

  // Sends `data` in 1 MiB chunks, Sync every 4 chunks; returns the outcome.
Result<CommitOutcome> Send(archive::Archive& a, const std::string& name, const std::string& data,
                                  const std::string& id, std::int64_t size_hint) {
  WF_ASSIGN(auto in, a.Begin({"main", name, id, size_hint}));
  const std::size_t chunk = 1u << 20;
  for (std::uint64_t i = in->next_chunk(); i * chunk < data.size(); ++i) {
    auto raw = std::as_bytes(std::span(data.data() + i * chunk, std::min(chunk, data.size() - i * chunk)));
    WF_TRY(in->Append(i, raw, compress::Algorithm::kZstd, {}));
    if (i % 4 == 3) {
      auto synced = in->Sync();
      if (!synced.ok()) return synced.error();
    }
  }
  auto bytes = std::as_bytes(std::span(data.data(), data.size()));
  return in->Commit(data.size(), Xxh3_128(bytes));
}

class S3ArchiveRgw : public ::testing::Test {
 public:
  void SetUp() override {
    std::string why;
    env_ = walferry::testing::RgwEnv::Get(&why);
    if (!env_) GTEST_SKIP() << why;
    static const std::string run = std::to_string(std::random_device{}());
    prefix_ = "t" + run + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    char tmpl[] = "/tmp/wf-s3state.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    state_root_ = tmpl;
  }
  void TearDown() override {
    if (!state_root_.empty()) std::filesystem::remove_all(state_root_);
  }
  S3ArchiveOptions Options(const std::string& state) {
    S3ArchiveOptions o;
    o.client.endpoint = env_->Value("S3_ENDPOINT");
    o.client.bucket = "archive-test";
    o.client.credentials = {env_->Value("AWS_ACCESS_KEY_ID"), env_->Value("AWS_SECRET_ACCESS_KEY"), "us-east-1", ""};
    o.client.max_attempts = 3;
    o.prefix = prefix_;
    o.state_dir = state.empty() ? "" : state_root_ + "/" + state;
    o.part_size = 5u << 20;
    o.format = archive::StoreFormat::kRaw;
    return o;
  }
  std::unique_ptr<archive::Archive> Open(const std::string& state) {
    auto a = OpenS3Archive(Options(state));
    EXPECT_TRUE(a.ok()) << (a.ok() ? "" : a.error().message());
    return a.ok() ? std::move(a).value() : nullptr;
  }
  walferry::testing::RgwEnv* env_ = nullptr;
  std::string prefix_, state_root_;
};

std::string Random(std::size_t n, unsigned seed) {
  std::mt19937_64 r(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(r());
  return s;
}

void Race(S3ArchiveRgw* t, std::size_t size, const char* name) {
  std::vector<std::unique_ptr<archive::Archive>> gws;
  for (int i = 0; i < 16; ++i) gws.push_back(t->Open("gw" + std::to_string(i)));
  std::atomic<int> placed{0}, different{0}, other{0};
  std::atomic<int> winner{-1};
  std::vector<std::thread> ts;
  for (int i = 0; i < 16; ++i) {
    ts.emplace_back([&, i] {
      std::mt19937_64 r(i);
      auto res = Send(*gws[i], name, Random(size, i), Hex32(r), -1);
      if (res.ok() && *res == CommitOutcome::kPlaced) {
        ++placed;
        winner = i;
      } else if (!res.ok() && res.error().code() == ErrorCode::kExistsDifferent) {
        ++different;
      } else {
        ++other;
        ADD_FAILURE() << (res.ok() ? "identical?" : res.error().message());
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(placed.load(), 1);
  EXPECT_EQ(different.load(), 15);
  ASSERT_GE(winner.load(), 0);
  auto e = gws[0]->Find("main", name);
  ASSERT_TRUE(e.ok()) << e.error().message();
  StringSink sink;
  ASSERT_TRUE(gws[0]->Read(*e, sink).ok());
  EXPECT_TRUE(sink.s == Random(size, static_cast<unsigned>(winner.load())));
}

TEST_F(S3ArchiveRgw, SinglePutRaceExactlyOneWins) { Race(this, 300000, "small.bin"); }
TEST_F(S3ArchiveRgw, MultipartRaceExactlyOneWins) { Race(this, 11u << 20, "big.bin"); }

TEST_F(S3ArchiveRgw, IdenticalIsConfirmedDifferentIsRefused) {
  auto a = Open("a");
  std::mt19937_64 r(7);
  const std::string data = Random(12u << 20, 1);  // multipart
  auto first = Send(*a, "f", data, Hex32(r), -1);
  ASSERT_TRUE(first.ok()) << first.error().message();
  EXPECT_EQ(*first, CommitOutcome::kPlaced);
  auto again = Send(*a, "f", data, Hex32(r), -1);
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(*again, CommitOutcome::kAlreadyIdentical);
  auto diff = Send(*a, "f", Random(12u << 20, 2), Hex32(r), -1);
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().code(), ErrorCode::kExistsDifferent);
  auto list = a->List("main", archive::EntryKind::kFile);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  StringSink sink;
  ASSERT_TRUE(a->Read((*list)[0], sink).ok());
  EXPECT_TRUE(sink.s == data);
  // No body of the refused copies is left behind.
  auto c = s3::Client::Make(Options("").client);
  auto all = (*c)->ListAll(prefix_ + "/main/.data/");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(S3ArchiveRgw, ResumesFromStoredPartsAfterLostIncoming) {
  const std::string data = Random(23u << 20, 3);
  std::mt19937_64 r(9);
  const std::string id = Hex32(r);
  std::uint64_t durable = 0;
  {
    auto a = Open("g");
    auto in = a->Begin({"main", "resume.bin", id, -1});
    ASSERT_TRUE(in.ok());
    for (std::uint64_t i = 0; i < 12; ++i) {
      auto raw = std::as_bytes(std::span(data.data() + (i << 20), std::size_t{1} << 20));
      ASSERT_TRUE((*in)->Append(i, raw, compress::Algorithm::kZstd, {}).ok());
      if (i % 4 == 3) durable = *(*in)->Sync();
    }
    // The gateway dies: the Incoming and its archive go away uncommitted.
  }
  EXPECT_EQ(durable, 12u);
  auto a = Open("g");
  auto in = a->Begin({"main", "resume.bin", id, -1});
  ASSERT_TRUE(in.ok()) << in.error().message();
  EXPECT_EQ((*in)->next_chunk(), 12u);  // parts confirmed by ListParts
  in->reset();
  auto res = Send(*a, "resume.bin", data, id, -1);
  ASSERT_TRUE(res.ok()) << ErrorCodeName(res.error().code()) << ": " << res.error().message();
  auto e = a->Find("main", "resume.bin");
  StringSink sink;
  ASSERT_TRUE(a->Read(*e, sink).ok());
  EXPECT_TRUE(sink.s == data);
}

TEST_F(S3ArchiveRgw, DamagedObjectIsCorruptOnRead) {
  auto a = Open("a");
  std::mt19937_64 r(11);
  ASSERT_TRUE(Send(*a, "x.bin", "hello world", Hex32(r), 11).ok());
  // Someone replaces the object's bytes but keeps walferry's metadata.
  auto c = s3::Client::Make(Options("").client);
  auto e = a->Find("main", "x.bin");
  ASSERT_TRUE(e.ok());
  auto info = (*c)->Head(e->path);
  ASSERT_TRUE(info.ok());
  const std::string evil = "hello w0rld";
  ASSERT_TRUE((*c)->Put(e->path, std::as_bytes(std::span(evil.data(), evil.size())), info->metadata, false).ok());
  StringSink sink;
  Status st = a->Read(*e, sink);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt) << st.error().message();
}

TEST_F(S3ArchiveRgw, PurgeStaleAbortsAbandonedUploads) {
  auto c = s3::Client::Make(Options("").client);
  ASSERT_TRUE((*c)->CreateBucket().ok());
  auto id = (*c)->CreateMultipart(prefix_ + "/main/.data/old.bin.x", {});
  ASSERT_TRUE(id.ok());
  auto a = Open("p");
  ASSERT_TRUE(a->PurgeStale(3600).ok());  // young: kept
  EXPECT_EQ((*c)->ListUploads(prefix_ + "/")->size(), 1u);
  ASSERT_TRUE(a->PurgeStale(-1).ok());  // any age
  EXPECT_EQ((*c)->ListUploads(prefix_ + "/")->size(), 0u);
}

TEST_F(S3ArchiveRgw, ClustersAndSystemIdentifierAbsent) {
  auto a = Open("a");
  std::mt19937_64 r(13);
  ASSERT_TRUE(Send(*a, "y.bin", "abc", Hex32(r), 3).ok());
  auto cl = a->Clusters();
  ASSERT_TRUE(cl.ok());
  ASSERT_EQ(cl->size(), 1u);
  EXPECT_EQ((*cl)[0], "main");
  auto sid = a->SystemIdentifier("main");
  ASSERT_TRUE(sid.ok());
  EXPECT_FALSE(sid->has_value());
  auto missing = a->Find("main", "nope.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace walferry::store_s3
