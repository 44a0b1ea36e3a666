// The S3 client against a real Ceph radosgw (tests/tools/ceph_rgw.sh):
// create-if-absent, refused bad digests and signatures, multipart with
// ListParts, ListObjectsV2 pagination, ranged reads, error mapping.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "s3/client.h"
#include "tests/support/s3_rgw_env.h"

namespace walferry::s3 {
namespace {

std::span<const std::byte> B(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

class S3Rgw : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    env_ = walferry::testing::RgwEnv::Get(&why);
    if (!env_) GTEST_SKIP() << why;
    ClientOptions o;
    o.endpoint = env_->Value("S3_ENDPOINT");
    o.bucket = "client-test";
    o.credentials = {env_->Value("AWS_ACCESS_KEY_ID"), env_->Value("AWS_SECRET_ACCESS_KEY"), "us-east-1", ""};
    o.max_attempts = 2;
    auto c = Client::Make(o);
    ASSERT_TRUE(c.ok()) << c.error().message();
    c_ = std::move(c).value();
    ASSERT_TRUE(c_->CreateBucket().ok());
  }
  // Unique per run, so a reused radosgw (WF_S3_ENV) starts empty.
  std::string Top() {
    static const std::string run = std::to_string(std::random_device{}());
    return run + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }
  std::string Key(const std::string& k) { return Top() + "/" + k; }
  walferry::testing::RgwEnv* env_ = nullptr;
  std::unique_ptr<Client> c_;
};

struct StringSink : ByteSink {
  std::string s;
  Status Write(std::span<const std::byte> d) override {
    s.append(reinterpret_cast<const char*>(d.data()), d.size());
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
};

TEST_F(S3Rgw, CreateIfAbsentIsExactlyOnce) {
  const std::string k = Key("obj");
  ASSERT_TRUE(c_->Put(k, B("first"), {{"wf-test", "1"}}, true).ok());
  Status again = c_->Put(k, B("second"), {}, true);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kExists) << again.error().message();
  auto info = c_->Head(k);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 5u);
  EXPECT_EQ(info->metadata["wf-test"], "1");
  StringSink sink;
  ASSERT_TRUE(c_->Get(k, sink, nullptr, 2).ok());  // 2-byte ranges: several pinned GETs
  EXPECT_EQ(sink.s, "first");
  auto missing = c_->Head(Key("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(S3Rgw, RacingCreatorsOneWins) {
  const std::string k = Key("race");
  std::vector<std::thread> ts;
  std::atomic<int> won{0}, exists{0};
  for (int i = 0; i < 16; ++i) {
    ts.emplace_back([&, i] {
      auto c = Client::Make(c_->options());
      std::string body = "writer " + std::to_string(i);
      Status st = (*c)->Put(k, B(body), {}, true);
      if (st.ok()) ++won;
      else if (st.error().code() == ErrorCode::kExists) ++exists;
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(won.load(), 1);
  EXPECT_EQ(exists.load(), 15);
}

TEST_F(S3Rgw, DamagedBodyIsRefusedByContentMd5) {
  ClientOptions o = c_->options();
  o.test_damage_bodies = true;
  auto c = Client::Make(o);
  Status st = (*c)->Put(Key("damaged"), B("payload"), {}, true);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kCorrupt) << st.error().message();
  auto info = c_->Head(Key("damaged"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().code(), ErrorCode::kNotFound);  // nothing stored
}

TEST_F(S3Rgw, WrongSecretIsAuthError) {
  ClientOptions o = c_->options();
  o.credentials.secret_key = "wrong";
  auto c = Client::Make(o);
  Status st = (*c)->Put(Key("x"), B("x"), {}, true);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kAuth) << st.error().message();
}

TEST_F(S3Rgw, MultipartListPartsAndResume) {
  const std::string k = Key("big");
  std::string part1(5u << 20, 'a'), part2 = "tail";
  for (std::size_t i = 0; i < part1.size(); i += 4096) part1[i] = static_cast<char>(i / 4096);
  auto id = c_->CreateMultipart(k, {{"wf-size", std::to_string(part1.size() + part2.size())}});
  ASSERT_TRUE(id.ok()) << id.error().message();
  auto e1 = c_->UploadPart(k, *id, 1, B(part1));
  ASSERT_TRUE(e1.ok()) << e1.error().message();
  // A "new process" finds the upload and its parts.
  auto ups = c_->ListUploads(Key(""));
  ASSERT_TRUE(ups.ok());
  ASSERT_EQ(ups->size(), 1u);
  EXPECT_EQ((*ups)[0].upload_id, *id);
  auto parts = c_->ListParts(k, *id);
  ASSERT_TRUE(parts.ok()) << parts.error().message();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].etag, *e1);
  EXPECT_EQ((*parts)[0].size, part1.size());
  auto e2 = c_->UploadPart(k, *id, 2, B(part2));
  ASSERT_TRUE(e2.ok());
  ASSERT_TRUE(c_->CompleteMultipart(k, *id, {{1, *e1, 0}, {2, *e2, 0}}).ok());
  StringSink sink;
  ASSERT_TRUE(c_->Get(k, sink).ok());
  EXPECT_TRUE(sink.s == part1 + part2);
  auto info = c_->Head(k);
  EXPECT_EQ(info->metadata["wf-size"], std::to_string(part1.size() + part2.size()));
  // Abort of an abandoned upload.
  auto id2 = c_->CreateMultipart(Key("abandoned"), {});
  ASSERT_TRUE(id2.ok());
  ASSERT_TRUE(c_->AbortMultipart(Key("abandoned"), *id2).ok());
  auto gone = c_->ListParts(Key("abandoned"), *id2);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code(), ErrorCode::kNotFound);
}

TEST_F(S3Rgw, ListPagination) {
  for (int i = 0; i < 7; ++i) ASSERT_TRUE(c_->Put(Key("k" + std::to_string(i)), B("v"), {}, false).ok());
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto p = c_->List(Key("k"), token, 3);
    ASSERT_TRUE(p.ok()) << p.error().message();
    for (auto& o : p->objects) seen.push_back(o.key);
    token = p->next_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  ASSERT_EQ(seen.size(), 7u);
  EXPECT_EQ(seen[6], Key("k6"));
  auto all = c_->ListAll(Key(""));
  EXPECT_EQ(all->size(), 7u);
  auto dirs = c_->List(Top(), "", 1000, "/");
  ASSERT_TRUE(dirs.ok());
  ASSERT_EQ(dirs->common_prefixes.size(), 1u);
}

}  // namespace
}  // namespace walferry::s3
