// archive::TarCheck (issue 8, point 4): a tar stream is accepted only when
// complete, a base backup only with its verified backup_manifest; non-tar
// streams pass in kAuto. Tars are built here member by member (ustar), and
// every stream is also fed one byte at a time and cut at every block boundary.
#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

#include "archive/archive.h"
#include "store/tar_check.h"
#include "tests/support/archive_test_util.h"
#include "core/hash.h"

namespace walferry::archive {
namespace {

std::string Octal(std::uint64_t v, std::size_t width) {
  std::string s(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0 && v;) {
    s[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  return s;
}

std::string Header(const std::string& name, std::uint64_t size, char type = '0') {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<std::size_t>(name.size(), 100));
  std::memcpy(&h[100], "0000600", 7);
  std::memcpy(&h[108], "0000000", 7);
  std::memcpy(&h[116], "0000000", 7);
  std::string sz = Octal(size, 12);
  std::memcpy(&h[124], sz.data(), 11);
  std::memcpy(&h[136], "00000000000", 11);
  h[156] = type;
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::string cs = Octal(sum, 7);
  std::memcpy(&h[148], cs.data(), 6);
  h[154] = '\0';
  h[155] = ' ';
  return h;
}

std::string Member(const std::string& name, const std::string& data) {
  std::string m = Header(name, data.size()) + data;
  m.append((512 - data.size() % 512) % 512, '\0');
  return m;
}

std::string End() { return std::string(1024, '\0'); }

std::string Sha256Hex(const std::string& s) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d, &n, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) {
    out.push_back(hex[d[i] >> 4]);
    out.push_back(hex[d[i] & 15]);
  }
  return out;
}

// A manifest as backup_manifest.c writes it (the checksum line last).
std::string Manifest(bool corrupt = false) {
  std::string body =
      "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n"
      "\"Files\": [\n"
      "{ \"Path\": \"backup_label\", \"Size\": 10, \"Last-Modified\": \"2026-12-01 00:00:00 GMT\", "
      "\"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"00000000\" }\n"
      "],\n"
      "\"WAL-Ranges\": [\n"
      "{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n"
      "],\n";
  std::string sum = Sha256Hex(body);
  if (corrupt) body[10] ^= 1;
  return body + "\"Manifest-Checksum\": \"" + sum + "\"}\n";
}

std::string PgControl(std::uint32_t version) {
  std::string c(8192, '\0');
  for (int i = 0; i < 4; ++i) c[8 + i] = static_cast<char>((version >> (8 * i)) & 0xff);
  return c;
}

std::string BaseBackup(std::uint32_t control_version, bool manifest, bool corrupt_manifest = false) {
  std::string t = Member("backup_label", "START WAL LOCATION: 0/2000028\n");
  t += Member("base/1/1259", std::string(20000, 'x'));
  t += Header("pg_wal", 0, '5');
  t += Member("global/pg_control", PgControl(control_version));
  if (manifest) t += Member("backup_manifest", Manifest(corrupt_manifest));
  return t + End();
}

Status Check(const std::string& s, ContentCheck mode, bool bytewise = false) {
  TarCheck c(mode);
  auto b = std::as_bytes(std::span(s.data(), s.size()));
  if (bytewise) {
    for (std::size_t i = 0; i < b.size(); ++i) c.Update(b.subspan(i, 1));
  } else {
    c.Update(b);
  }
  return c.Finish();
}

TEST(TarCheck, CompleteTarsPass) {
  std::string t = Member("a.txt", "hello") + Member("dir/b", std::string(1024, 'b')) + End();
  EXPECT_TRUE(Check(t, ContentCheck::kAuto).ok());
  EXPECT_TRUE(Check(t, ContentCheck::kTar).ok());
  EXPECT_TRUE(Check(t, ContentCheck::kTar, true).ok());
  // tar pads to its record size with zeros.
  EXPECT_TRUE(Check(t + std::string(8192, '\0'), ContentCheck::kTar).ok());
  EXPECT_TRUE(Check(BaseBackup(1300, true), ContentCheck::kTar).ok());
  EXPECT_TRUE(Check(BaseBackup(1300, true), ContentCheck::kAuto, true).ok());
  // PostgreSQL 12 and older make no manifest.
  EXPECT_TRUE(Check(BaseBackup(1201, false), ContentCheck::kAuto).ok());
}

TEST(TarCheck, EveryCutIsRefused) {
  for (const std::string& t : {Member("a", std::string(3000, 'a')) + Member("b", "bb") + End(),
                               BaseBackup(1300, true)}) {
    for (std::size_t cut = 1; cut < t.size(); cut += (cut < 600 ? 1 : 97)) {
      if (cut >= t.size() - 512) break;  // the second zero block may be all that is missing... checked below
      auto st = Check(t.substr(0, cut), ContentCheck::kTar);
      ASSERT_FALSE(st.ok()) << "cut at " << cut << " of " << t.size() << " accepted";
      EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
      if (cut >= 512) {
        EXPECT_FALSE(Check(t.substr(0, cut), ContentCheck::kAuto).ok()) << "auto, cut at " << cut;
      }
    }
    // Only one of the two zero blocks.
    EXPECT_FALSE(Check(t.substr(0, t.size() - 512), ContentCheck::kAuto).ok());
    // No end-of-archive marker at all.
    EXPECT_FALSE(Check(t.substr(0, t.size() - 1024), ContentCheck::kAuto).ok());
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Status CheckInPieces(const std::string& s, ContentCheck mode, std::size_t piece) {
  TarCheck c(mode);
  auto b = std::as_bytes(std::span(s.data(), s.size()));
  for (std::size_t i = 0; i < b.size(); i += piece) c.Update(b.subspan(i, std::min(piece, b.size() - i)));
  return c.Finish();
}

// tar_check_fuzz crash-f6a8dd97...: a non-zero byte after the end-of-archive
// marker was reported at the offset of the piece that held it, so the message
// depended on how the stream was split. It names the byte itself now.
TEST(TarCheck, DataAfterTheEndIsReportedAtTheSameByteForAnySplit) {
  const std::string fuzz = ReadFile(std::string(WALFERRY_SOURCE_DIR) +
                                    "/fuzz/corpus/tar_check/crash-f6a8dd97f88012a0383e097afc8ca890b10acb0a");
  ASSERT_GT(fuzz.size(), 2u);
  std::string t = Member("a", "aaaa") + End() + std::string(1000, '\0');
  t[t.size() - 300] = 'x';
  const std::string want = "data after the end-of-archive marker at byte " + std::to_string(t.size() - 300);
  for (const auto& [stream, mode, expect] :
       {std::tuple{fuzz.substr(2), static_cast<ContentCheck>(fuzz[0] % 3), std::string("")},
        std::tuple{t, ContentCheck::kTar, want}}) {
    const Status whole = Check(stream, mode);
    ASSERT_FALSE(whole.ok());
    EXPECT_EQ(whole.error().code(), ErrorCode::kRefused);
    if (!expect.empty()) {
      EXPECT_EQ(whole.error().message(), expect);
    }
    for (std::size_t piece : {std::size_t{1}, std::size_t{36}, std::size_t{511}, std::size_t{512}, std::size_t{4096}}) {
      const Status split = CheckInPieces(stream, mode, piece);
      ASSERT_FALSE(split.ok()) << piece;
      EXPECT_EQ(split.error().message(), whole.error().message()) << "pieces of " << piece;
    }
  }
}

TEST(TarCheck, DamageIsRefused) {
  std::string t = Member("a", "aaaa") + Member("b", "bbbb") + End();
  std::string bad = t;
  bad[512 * 2 + 3] ^= 1;  // second header's name: checksum no longer matches
  EXPECT_FALSE(Check(bad, ContentCheck::kAuto).ok());
  std::string after = t + "garbage";
  EXPECT_FALSE(Check(after, ContentCheck::kAuto).ok());
  std::string header_after_zero = Member("a", "aaaa") + std::string(512, '\0') + Member("b", "b") + End();
  EXPECT_FALSE(Check(header_after_zero, ContentCheck::kAuto).ok());
}

TEST(TarCheck, BaseBackupNeedsItsVerifiedManifest) {
  auto no_manifest = Check(BaseBackup(1300, false), ContentCheck::kAuto);
  ASSERT_FALSE(no_manifest.ok());
  EXPECT_NE(no_manifest.error().message().find("backup_manifest"), std::string::npos);
  auto corrupt = Check(BaseBackup(1300, true, /*corrupt_manifest=*/true), ContentCheck::kAuto);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.error().message().find("checksum mismatch"), std::string::npos) << corrupt.error().message();
  // A manifest cut short inside its member is an incomplete tar; one whose
  // text lacks the trailer line is refused by the manifest rule.
  std::string m = Manifest();
  std::string no_trailer = m.substr(0, m.rfind("\"Manifest-Checksum\""));
  std::string t = Member("backup_label", "x\n") + Member("global/pg_control", PgControl(1300)) +
                  Member("backup_manifest", no_trailer) + End();
  EXPECT_FALSE(Check(t, ContentCheck::kAuto).ok());
  // --expect any stores it anyway.
  EXPECT_TRUE(Check(BaseBackup(1300, false), ContentCheck::kNone).ok());
}

TEST(TarCheck, NonTarStreams) {
  EXPECT_TRUE(Check("", ContentCheck::kAuto).ok());
  EXPECT_TRUE(Check("hello", ContentCheck::kAuto).ok());
  EXPECT_TRUE(Check(std::string(100000, 'z'), ContentCheck::kAuto).ok());
  EXPECT_TRUE(Check(std::string(4096, '\0'), ContentCheck::kAuto).ok());
  EXPECT_FALSE(Check("", ContentCheck::kTar).ok());
  EXPECT_FALSE(Check(std::string(100000, 'z'), ContentCheck::kTar).ok());
  EXPECT_FALSE(Check(std::string(4096, '\0'), ContentCheck::kTar).ok());
}

// The receiver applies the rule at Commit (WithContentCheck, as the server
// does), also after a resume (the check's state is rebuilt from the durable
// temp data, read back and decompressed from the store format).
class TarAtCommit : public ::testing::TestWithParam<StoreFormat> {
 protected:
  void SetUp() override { root_ = testing::MakeTempDir("tar-commit"); }
  void TearDown() override { testing::RemoveTree(root_); }
  static constexpr std::size_t kChunk = 4096;

  // Sends `data` as `name`, cut into a first connection that stops after
  // `first` chunks (made durable) and a resumed one with the rest.
  Result<CommitOutcome> SendResumed(const std::string& name, const std::string& data, std::size_t first,
                                    ContentCheck check = ContentCheck::kAuto) {
    TransferSpec spec{"main", name, std::string(31, '0') + std::to_string(first % 10), -1, check};
    auto bytes = std::as_bytes(std::span(data.data(), data.size()));
    const std::size_t chunks = (data.size() + kChunk - 1) / kChunk;
    auto append = [&](Incoming& in, std::size_t from, std::size_t to) -> Status {
      for (std::size_t c = from; c < to; ++c) {
        auto raw = bytes.subspan(c * kChunk, std::min(kChunk, data.size() - c * kChunk));
        WF_TRY(in.Append(c, raw, compress::Algorithm::kRaw, raw));
      }
      return Status::Ok();
    };
    {
      WF_ASSIGN(auto a, Archive::Open(root_, GetParam()));
      WF_ASSIGN(auto begun, a->Begin(spec));
      WF_ASSIGN(auto in, WithContentCheck(std::move(begun), spec));
      WF_TRY(append(*in, 0, first));
      WF_ASSIGN(auto durable, in->Sync());
      EXPECT_EQ(durable, first);
    }  // the connection goes away; the durable part stays for a resume
    WF_ASSIGN(auto a, Archive::Open(root_, GetParam()));
    WF_ASSIGN(auto begun, a->Begin(spec));
    WF_ASSIGN(auto in, WithContentCheck(std::move(begun), spec));
    EXPECT_EQ(in->next_chunk(), first);
    WF_TRY(append(*in, first, chunks));
    return in->Commit(data.size(), Xxh3_128(bytes));
  }
  bool Stored(const std::string& name) const {
    return testing::Exists(root_ + "/main/files/" + name) || testing::Exists(root_ + "/main/files/" + name + ".zst") ||
           testing::Exists(root_ + "/main/files/" + name + ".gz");
  }
  std::string root_;
};

TEST_P(TarAtCommit, CompleteTarIsPlacedAfterAResume) {
  auto r = SendResumed("full.tar", BaseBackup(1300, true), 5);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(Stored("full.tar"));
}

TEST_P(TarAtCommit, CutTarIsRefusedAfterAResume) {
  std::string t = BaseBackup(1300, true);
  auto r = SendResumed("cut.tar", t.substr(0, t.size() - 3000), 3);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused) << r.error().message();
  EXPECT_FALSE(Stored("cut.tar"));
  // --expect any stores it.
  EXPECT_TRUE(SendResumed("cut-any.tar", t.substr(0, t.size() - 3000), 3, ContentCheck::kNone).ok());
  // --expect tar refuses what is not a tar, even when it is not cut.
  auto n = SendResumed("random.tar", std::string(20000, 'r'), 2, ContentCheck::kTar);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code(), ErrorCode::kRefused);
}

// A store that cannot read its temp data back (the object store's default):
// a resumed --expect tar transfer is abandoned for the caller to start over; a
// resumed --expect auto one continues without the receiver's check (noted).
TEST(TarCheckWrapper, ResumeWithoutReadBack) {
  struct Fake final : Incoming {
    bool* abandoned;
    explicit Fake(bool* a) : abandoned(a) {}
    std::uint64_t next_chunk() const override { return 2; }
    std::uint64_t next_raw_offset() const override { return 8192; }
    Status Append(std::uint64_t, std::span<const std::byte>, compress::Algorithm, std::span<const std::byte>) override {
      return Status::Ok();
    }
    Result<std::uint64_t> Sync() override { return std::uint64_t{2}; }
    Result<CommitOutcome> Commit(std::uint64_t, const Hash128&) override { return CommitOutcome::kPlaced; }
    void Abandon() override { *abandoned = true; }
  };
  bool abandoned = false;
  // --expect tar: the check needs every byte, so the transfer starts over.
  TransferSpec spec{"main", "base.tar", std::string(32, 'a'), -1, ContentCheck::kTar};
  auto r = WithContentCheck(std::make_unique<Fake>(&abandoned), spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(abandoned);
  // --expect auto: the resume is kept, unchecked by the receiver, and said so.
  abandoned = false;
  spec.content = ContentCheck::kAuto;
  std::string note;
  auto kept = WithContentCheck(std::make_unique<Fake>(&abandoned), spec, &note);
  ASSERT_TRUE(kept.ok());
  EXPECT_FALSE(abandoned);
  EXPECT_NE(note.find("without the receiver's tar check"), std::string::npos) << note;
  spec.content = ContentCheck::kAuto;
  // WAL entries and --expect any are not wrapped at all.
  abandoned = false;
  spec.name = "000000010000000000000001";
  EXPECT_TRUE(WithContentCheck(std::make_unique<Fake>(&abandoned), spec).ok());
  spec.name = "base.tar";
  spec.content = ContentCheck::kNone;
  EXPECT_TRUE(WithContentCheck(std::make_unique<Fake>(&abandoned), spec).ok());
  EXPECT_FALSE(abandoned);
}

INSTANTIATE_TEST_SUITE_P(Stores, TarAtCommit,
                         ::testing::Values(StoreFormat::kRaw, StoreFormat::kZstd, StoreFormat::kGzip));

}  // namespace
}  // namespace walferry::archive
