// Store formats: zstd frames kept as received, recompression when the frame
// format differs from the store, stock-tool interop, cross-format idempotency,
// resume of compressed stores, damaged stored data.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "archive/archive.h"
#include "tests/support/archive_test_util.h"
#include "compress/codec.h"
#include "core/hash.h"

namespace walferry::archive {
namespace {

using compress::Algorithm;
using testing::Exists;
using testing::Pattern;
using testing::ReadBytes;
using testing::TransferId;

constexpr std::size_t kStoreChunk = 1 << 20;

// Compressible test data: repeated text with a varying counter.
std::vector<std::byte> Text(std::size_t n, int seed) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) s += "row " + std::to_string(i * 7 + seed) + " walferry archive test\n";
  s.resize(n);
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(s[i]);
  return v;
}

class ArchiveStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("archstore");
    root_ = dir_ + "/root";
  }
  void TearDown() override { testing::RemoveTree(dir_); }

  std::unique_ptr<Archive> Open(StoreFormat f) {
    auto a = Archive::Open(root_, f);
    EXPECT_TRUE(a.ok());
    return std::move(a).value();
  }

  static TransferSpec Spec(std::string name, int id) {
    TransferSpec s;
    s.cluster = "main";
    s.name = std::move(name);
    s.transfer_id = TransferId(id);
    return s;
  }

  // Sends chunks [from, to) framed with `alg`; collects the frames in `frames`.
  static Status AppendFramed(Incoming& in, const std::vector<std::byte>& data, Algorithm alg,
                             std::size_t from, std::size_t to, std::vector<std::byte>* frames = nullptr) {
    WF_ASSIGN(auto codec, compress::MakeCodec(alg, compress::DefaultLevel(alg)));
    std::vector<std::byte> buf;
    for (std::size_t c = from; c < to; ++c) {
      std::size_t off = c * kStoreChunk;
      std::span<const std::byte> raw(data.data() + off, std::min(kStoreChunk, data.size() - off));
      buf.resize(codec->Bound(raw.size()));
      WF_ASSIGN(std::size_t n, codec->Compress(raw, buf));
      std::span<const std::byte> frame(buf.data(), n);
      if (frames) frames->insert(frames->end(), frame.begin(), frame.end());
      WF_TRY(in.Append(c, raw, alg, frame));
    }
    return Status::Ok();
  }
  static std::size_t Chunks(const std::vector<std::byte>& d) {
    return (d.size() + kStoreChunk - 1) / kStoreChunk;
  }

  static Result<CommitOutcome> SendAll(Archive& a, const TransferSpec& spec,
                                       const std::vector<std::byte>& data, Algorithm alg,
                                       std::vector<std::byte>* frames = nullptr) {
    WF_ASSIGN(auto in, a.Begin(spec));
    WF_TRY(AppendFramed(*in, data, alg, 0, Chunks(data), frames));
    return in->Commit(data.size(), Xxh3_128(data));
  }

  // Raw content of a stored entry through ReadEntry.
  static std::vector<std::byte> Read(const StoredEntry& e) {
    struct Collect : ByteSink {
      std::vector<std::byte> out;
      bool finished = false;
      Status Write(std::span<const std::byte> d) override {
        out.insert(out.end(), d.begin(), d.end());
        return Status::Ok();
      }
      Status Finish() override {
        finished = true;
        return Status::Ok();
      }
    } sink;
    auto st = ReadEntry(e, sink);
    EXPECT_TRUE(st.ok()) << st.error().message();
    EXPECT_TRUE(sink.finished);
    return sink.out;
  }

  // Output of a stock tool on a file.
  static std::vector<std::byte> Stock(const std::string& cmd, const std::string& path,
                                      const std::string& out) {
    std::string full = cmd + " '" + path + "' > '" + out + "'";
    EXPECT_EQ(std::system(full.c_str()), 0) << full;
    return ReadBytes(out);
  }

  std::string dir_, root_;
};

TEST_F(ArchiveStore, ZstdStoreKeepsFramesAsReceived) {
  auto a = Open(StoreFormat::kZstd);
  auto data = Text(3 * kStoreChunk + 999, 1);
  std::vector<std::byte> frames;
  ASSERT_EQ(*SendAll(*a, Spec("base.tar", 1), data, Algorithm::kZstd, &frames), CommitOutcome::kPlaced);
  const std::string path = root_ + "/main/files/base.tar.zst";
  EXPECT_EQ(ReadBytes(path), frames);  // byte for byte: no recompression
  EXPECT_FALSE(Exists(root_ + "/main/files/base.tar"));
  EXPECT_EQ(Stock("zstd -dcq", path, dir_ + "/out"), data);
  auto e = a->Find("main", "base.tar");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->format, StoreFormat::kZstd);
  EXPECT_EQ(e->path, path);
  EXPECT_EQ(Read(*e), data);
  auto h = HashEntry(*e);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->first, data.size());
  EXPECT_EQ(h->second, Xxh3_128(data));
  auto list = a->List("main", EntryKind::kFile);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "base.tar");
  EXPECT_EQ((*list)[0].format, StoreFormat::kZstd);
}

TEST_F(ArchiveStore, RecompressesWhenFormatsDiffer) {
  struct Case {
    StoreFormat store;
    Algorithm frames;
    const char* stock;
  } cases[] = {
      {StoreFormat::kGzip, Algorithm::kZstd, "gzip -dc"},
      {StoreFormat::kGzip, Algorithm::kRaw, "gzip -dc"},
      {StoreFormat::kZstd, Algorithm::kGzip, "zstd -dcq"},
      {StoreFormat::kZstd, Algorithm::kRaw, "zstd -dcq"},
      {StoreFormat::kRaw, Algorithm::kZstd, "cat"},
      {StoreFormat::kRaw, Algorithm::kGzip, "cat"},
      {StoreFormat::kGzip, Algorithm::kGzip, "gzip -dc"},
  };
  int i = 0;
  for (const auto& c : cases) {
    ++i;
    auto a = Open(c.store);
    auto data = Text(2 * kStoreChunk + 17 * i, i);
    const std::string name = "f" + std::to_string(i);
    auto r = SendAll(*a, Spec(name, i), data, c.frames);
    ASSERT_TRUE(r.ok()) << i << ": " << r.error().message();
    const std::string path = root_ + "/main/files/" + name + std::string(StoreSuffix(c.store));
    EXPECT_EQ(Stock(c.stock, path, dir_ + "/out"), data) << i;
    auto e = a->Find("main", name);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(Read(*e), data) << i;
  }
}

TEST_F(ArchiveStore, SameNameInAnotherFormatIsCompared) {
  auto data = Text(kStoreChunk + 5, 3);
  ASSERT_TRUE(SendAll(*Open(StoreFormat::kRaw), Spec("notes.txt", 1), data, Algorithm::kRaw).ok());
  // The receiver restarts with --store zstd: identical content is confirmed
  // against the raw copy, different content is refused; no .zst appears.
  auto z = Open(StoreFormat::kZstd);
  EXPECT_EQ(*SendAll(*z, Spec("notes.txt", 2), data, Algorithm::kZstd), CommitOutcome::kAlreadyIdentical);
  auto r = SendAll(*z, Spec("notes.txt", 3), Text(kStoreChunk + 5, 4), Algorithm::kZstd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kExistsDifferent);
  EXPECT_FALSE(Exists(root_ + "/main/files/notes.txt.zst"));
  EXPECT_EQ(ReadBytes(root_ + "/main/files/notes.txt"), data);
  // And the other way round.
  ASSERT_TRUE(SendAll(*z, Spec("other", 4), data, Algorithm::kZstd).ok());
  auto g = Open(StoreFormat::kGzip);
  EXPECT_EQ(*SendAll(*g, Spec("other", 5), data, Algorithm::kGzip), CommitOutcome::kAlreadyIdentical);
  EXPECT_EQ(SendAll(*g, Spec("other", 6), Text(10, 1), Algorithm::kGzip).error().code(),
            ErrorCode::kExistsDifferent);
  EXPECT_FALSE(Exists(root_ + "/main/files/other.gz"));
}

TEST_F(ArchiveStore, EmptyStreamIsAValidCompressedFile) {
  for (StoreFormat f : {StoreFormat::kZstd, StoreFormat::kGzip}) {
    auto a = Open(f);
    const std::string name = f == StoreFormat::kZstd ? "empty-z" : "empty-g";
    std::vector<std::byte> empty;
    ASSERT_EQ(*SendAll(*a, Spec(name, 1), empty, Algorithm::kZstd), CommitOutcome::kPlaced);
    const std::string path = root_ + "/main/files/" + name + std::string(StoreSuffix(f));
    EXPECT_GT(ReadBytes(path).size(), 0u);
    EXPECT_TRUE(Stock(f == StoreFormat::kZstd ? "zstd -dcq" : "gzip -dc", path, dir_ + "/out").empty());
    EXPECT_TRUE(Read(*a->Find("main", name)).empty());
    EXPECT_EQ(*SendAll(*a, Spec(name, 2), empty, Algorithm::kZstd), CommitOutcome::kAlreadyIdentical);
  }
}

TEST_F(ArchiveStore, CompressedStoreResumes) {
  auto data = Text(5 * kStoreChunk + 3, 5);
  {
    auto a = Open(StoreFormat::kGzip);
    auto in = a->Begin(Spec("big", 1));
    ASSERT_TRUE(AppendFramed(**in, data, Algorithm::kZstd, 0, 2).ok());
    ASSERT_EQ(*(*in)->Sync(), 2u);
    ASSERT_TRUE(AppendFramed(**in, data, Algorithm::kZstd, 2, 3).ok());  // lost in the crash
  }
  auto a = Open(StoreFormat::kGzip);
  auto in = a->Begin(Spec("big", 1));
  ASSERT_TRUE(in.ok());
  ASSERT_EQ((*in)->next_chunk(), 2u);
  ASSERT_TRUE(AppendFramed(**in, data, Algorithm::kZstd, 2, Chunks(data)).ok());
  ASSERT_EQ(*(*in)->Commit(data.size(), Xxh3_128(data)), CommitOutcome::kPlaced);
  EXPECT_EQ(Stock("gzip -dc", root_ + "/main/files/big.gz", dir_ + "/out"), data);
  // A receiver restarted with another store format does not resume into it.
  {
    auto z = Open(StoreFormat::kGzip);
    auto in2 = z->Begin(Spec("big2", 2));
    ASSERT_TRUE(AppendFramed(**in2, data, Algorithm::kZstd, 0, 2).ok());
    ASSERT_TRUE((*in2)->Sync().ok());
  }
  auto z = Open(StoreFormat::kZstd);
  auto in2 = z->Begin(Spec("big2", 2));
  ASSERT_TRUE(in2.ok());
  EXPECT_EQ((*in2)->next_chunk(), 0u);
}

TEST_F(ArchiveStore, DamagedStoredCopyIsReportedNotTrusted) {
  auto a = Open(StoreFormat::kZstd);
  auto data = Text(2 * kStoreChunk, 6);
  ASSERT_TRUE(SendAll(*a, Spec("f", 1), data, Algorithm::kZstd).ok());
  const std::string path = root_ + "/main/files/f.zst";
  auto bytes = ReadBytes(path);
  bytes[bytes.size() / 2] ^= std::byte{0x40};
  ::chmod(path.c_str(), 0600);
  testing::WriteBytes(path, bytes);
  auto e = a->Find("main", "f");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(HashEntry(*e).ok());
  // Re-sending the same name never overwrites it, even though the copy is bad.
  auto r = SendAll(*a, Spec("f", 2), data, Algorithm::kZstd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kExistsDifferent);
  EXPECT_EQ(ReadBytes(path), bytes);
}

}  // namespace
}  // namespace walferry::archive
