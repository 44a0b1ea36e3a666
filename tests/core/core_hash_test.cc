// XXH3 helpers: one-shot values equal xxHash's own, streaming equals one-shot
// for any split, and Save/Restore continues a running hash exactly.
#include <xxhash.h>

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/hash.h"
#include "core/mapped_file.h"

namespace walferry {
namespace {

std::vector<std::byte> RandomBytes(std::size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// Run as a child by RestoresAStateSavedByAnotherProcess (WF_XXH3_SAVE_TO set):
// hashes a prefix, writes the saved state and exits before any test runs.
[[maybe_unused]] const bool kSavedForParent = [] {
  const char* to = std::getenv("WF_XXH3_SAVE_TO");
  if (!to) return false;
  auto data = RandomBytes(50000, 21);
  Xxh3Stream s;
  s.Update(std::span(data).first(33333));
  { std::ofstream(to, std::ios::binary) << s.Save(); }
  std::_Exit(0);
}();

TEST(Xxh3, OneShotMatchesLibraryAndKnownVectors) {
  // Published XXH3 values for the empty input.
  EXPECT_EQ(Xxh3_64({}), 0x2D06800538D394C2ULL);
  Hash128 empty = Xxh3_128({});
  EXPECT_EQ(empty.high, 0x99AA06D3014798D8ULL);
  EXPECT_EQ(empty.low, 0x6001C324468D497FULL);
  for (std::size_t n : {1u, 3u, 16u, 17u, 128u, 129u, 240u, 241u, 1000u, 100000u}) {
    auto data = RandomBytes(n, static_cast<unsigned>(n));
    EXPECT_EQ(Xxh3_64(data), XXH3_64bits(data.data(), data.size())) << n;
    XXH128_hash_t ref = XXH3_128bits(data.data(), data.size());
    Hash128 h = Xxh3_128(data);
    EXPECT_EQ(h.low, ref.low64) << n;
    EXPECT_EQ(h.high, ref.high64) << n;
  }
}

TEST(Xxh3, HexIsHighThenLow) {
  Hash128 h{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  EXPECT_EQ(h.Hex(), "fedcba98765432100123456789abcdef");
  EXPECT_EQ(Hash128{}.Hex(), std::string(32, '0'));
  EXPECT_EQ(Xxh3_128({}).Hex(), "99aa06d3014798d86001c324468d497f");
}

TEST(Xxh3, SingleBitChangesTheHash) {
  auto data = RandomBytes(4096, 1);
  auto h = Xxh3_128(data);
  auto h64 = Xxh3_64(data);
  data[2000] ^= std::byte{0x10};
  EXPECT_NE(Xxh3_128(data), h);
  EXPECT_NE(Xxh3_64(data), h64);
}

TEST(Xxh3Stream, EqualsOneShotForAnySplit) {
  auto data = RandomBytes(3 << 20, 7);  // several 1 KiB stripes blocks and buffer wraps
  Hash128 want = Xxh3_128(data);
  std::mt19937 rng(42);
  for (int round = 0; round < 8; ++round) {
    Xxh3Stream s;
    std::size_t off = 0;
    while (off < data.size()) {
      std::size_t n = std::min<std::size_t>(data.size() - off, rng() % (round < 4 ? 300 : 200000));
      s.Update(std::span(data).subspan(off, n));
      off += n;
    }
    EXPECT_EQ(s.Digest(), want) << round;
  }
}

TEST(Xxh3Stream, DigestDoesNotConsumeAndResetRestarts) {
  auto data = RandomBytes(1000, 3);
  Xxh3Stream s;
  EXPECT_EQ(s.Digest(), Xxh3_128({}));
  s.Update(data);
  EXPECT_EQ(s.Digest(), Xxh3_128(data));
  EXPECT_EQ(s.Digest(), Xxh3_128(data));
  s.Reset();
  EXPECT_EQ(s.Digest(), Xxh3_128({}));
  s.Update(std::span(data).first(10));
  EXPECT_EQ(s.Digest(), Xxh3_128(std::span(data).first(10)));
}

// Save after `cut` bytes, Restore into a fresh stream, feed the rest: the
// digest must equal the one-shot hash of everything.
TEST(Xxh3Stream, SaveRestoreContinuesExactly) {
  auto data = RandomBytes(70000, 9);
  const Hash128 want = Xxh3_128(data);
  for (std::size_t cut : {0u, 1u, 63u, 64u, 200u, 240u, 255u, 256u, 257u, 1023u, 1024u, 1025u,
                          4096u, 16383u, 16384u, 16385u, 40000u, 69999u, 70000u}) {
    Xxh3Stream a;
    // Feed the prefix in uneven pieces so the internal buffer is mid-way.
    std::size_t off = 0, step = 1;
    while (off < cut) {
      std::size_t n = std::min(cut - off, step);
      a.Update(std::span(data).subspan(off, n));
      off += n;
      step = step * 3 + 1;
    }
    std::string blob = a.Save();
    Xxh3Stream b;
    b.Update(RandomBytes(500, 1));  // Restore replaces whatever b held
    ASSERT_TRUE(b.Restore(blob)) << cut;
    EXPECT_EQ(b.Digest(), Xxh3_128(std::span(data).first(cut))) << cut;
    b.Update(std::span(data).subspan(cut));
    a.Update(std::span(data).subspan(cut));
    EXPECT_EQ(b.Digest(), want) << cut;
    EXPECT_EQ(a.Digest(), want) << cut;
    EXPECT_EQ(b.Save(), a.Save()) << cut;
  }
}

// The receiver persists the running hash in its resume manifest and restores
// it after a restart, in another process whose addresses differ (ASLR). This
// test re-executes its own binary to save a state there and restores it here.
TEST(Xxh3Stream, RestoresAStateSavedByAnotherProcess) {
  char tmpl[] = "/tmp/wf-core-hash.XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::string out = tmpl;
  char self[4096];
  ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  ASSERT_GT(len, 0);
  self[len] = '\0';
  std::string cmd = "WF_XXH3_SAVE_TO='" + out + "' '" + self + "' >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(out, std::ios::binary);
  std::string blob((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ::unlink(out.c_str());
  auto data = RandomBytes(50000, 21);
  Xxh3Stream s;
  ASSERT_TRUE(s.Restore(blob)) << "blob of " << blob.size() << " bytes refused";
  EXPECT_EQ(s.Digest(), Xxh3_128(std::span(data).first(33333)));
  s.Update(std::span(data).subspan(33333));
  EXPECT_EQ(s.Digest(), Xxh3_128(data));
}

TEST(Xxh3Stream, RestoreRefusesForeignOrCorruptBlobs) {
  auto data = RandomBytes(10000, 5);
  Xxh3Stream s;
  s.Update(data);
  const Hash128 before = s.Digest();
  std::string blob = s.Save();
  EXPECT_FALSE(s.Restore(""));
  EXPECT_FALSE(s.Restore(blob.substr(1)));
  EXPECT_FALSE(s.Restore(blob + "x"));
  std::string bad_magic = blob;
  bad_magic[0] ^= 1;
  EXPECT_FALSE(s.Restore(bad_magic));
  // Counters live at the end: bufferedSize (4), nbStripesSoFar (8), totalLen (8).
  std::string bad_buffered = blob;
  bad_buffered[blob.size() - 20] = static_cast<char>(0xff);
  bad_buffered[blob.size() - 19] = static_cast<char>(0xff);
  EXPECT_FALSE(s.Restore(bad_buffered));
  std::string bad_stripes = blob;
  for (int i = 0; i < 8; ++i) bad_stripes[blob.size() - 16 + i] = static_cast<char>(0x7f);
  EXPECT_FALSE(s.Restore(bad_stripes));
  std::string bad_total = blob;
  for (int i = 0; i < 8; ++i) bad_total[blob.size() - 8 + i] = 0;
  EXPECT_FALSE(s.Restore(bad_total));  // total 0 with bytes buffered
  // A refused Restore leaves the running state alone.
  EXPECT_EQ(s.Digest(), before);
}

// xxh3_state_fuzz crash-4aeaddac...: a blob with totalLen 2^64-6 was accepted;
// 25 more bytes wrapped the length to 19 with 70 bytes buffered, a state that
// Restore itself refuses. Lengths beyond 2^62 are refused now.
TEST(Xxh3Stream, RestoreRefusesALengthThatWouldWrap) {
  std::ifstream in(std::string(WALFERRY_SOURCE_DIR) +
                       "/fuzz/corpus/xxh3_state/crash-4aeaddacee708ee1d92bda9b68c676db58ac74c1",
                   std::ios::binary);
  const std::string fuzz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(fuzz.empty());
  Xxh3Stream s;
  EXPECT_FALSE(s.Restore(fuzz));
  // The same for a real state whose length is pushed past 2^62.
  Xxh3Stream a;
  a.Update(RandomBytes(10000, 3));
  std::string blob = a.Save();
  ASSERT_TRUE(s.Restore(blob));
  std::uint64_t total = (std::uint64_t{1} << 62) + 10000;
  std::memcpy(blob.data() + blob.size() - 8, &total, 8);
  EXPECT_FALSE(s.Restore(blob));
}

// xxh3_state_fuzz crash-b9e59efc (found after the fix above): totalLen 2^62-6
// with 45 bytes buffered passed the bound, and 25 more bytes crossed it. Such a
// length cannot come from XXH3_update: past the buffer it consumes whole
// stripes, and the stripe counter follows the bytes consumed.
TEST(Xxh3Stream, RestoreRefusesALengthThatDisagreesWithTheStripes) {
  std::ifstream in(std::string(WALFERRY_SOURCE_DIR) +
                       "/fuzz/corpus/xxh3_state/crash-b9e59efcac2a6ffbdc8cb7af4dff0b9bc9bc2bec",
                   std::ios::binary);
  const std::string fuzz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(fuzz.empty());
  Xxh3Stream s;
  EXPECT_FALSE(s.Restore(fuzz));
  Xxh3Stream a;
  a.Update(RandomBytes(10000, 4));
  EXPECT_EQ(a.length(), 10000u);
  const std::string blob = a.Save();
  ASSERT_TRUE(s.Restore(blob));
  EXPECT_EQ(s.length(), 10000u);
  for (std::uint64_t delta : {std::uint64_t{1}, std::uint64_t{63}, std::uint64_t{64}, std::uint64_t{1024} - 64}) {
    std::string bad = blob;
    std::uint64_t total = 10000 + delta;
    std::memcpy(bad.data() + bad.size() - 8, &total, 8);
    EXPECT_FALSE(s.Restore(bad)) << "total off by " << delta;
  }
  // Off by a whole block (16 stripes of 64 bytes) the counters agree again.
  std::string block = blob;
  std::uint64_t total = 10000 + 1024;
  std::memcpy(block.data() + block.size() - 8, &total, 8);
  EXPECT_TRUE(s.Restore(block));
}

// The sender's HAVE digest: the whole file through a mapping, equal to the
// one-shot hash of its bytes; a size that changed since the caller's stat is
// refused rather than hashed.
TEST(HashWholeFile, EqualsOneShotAndRefusesAChangedSize) {
  char dir[] = "/tmp/wf-hashfile-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/f";
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{(1 << 20) + 17}}) {
    auto data = RandomBytes(n, static_cast<unsigned>(n));
    { std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(data.data()), n); }
    auto h = HashWholeFile(path, n);
    ASSERT_TRUE(h.ok()) << h.error().message();
    EXPECT_EQ(*h, Xxh3_128(data)) << n;
    auto changed = HashWholeFile(path, n + 1);
    ASSERT_FALSE(changed.ok());
    EXPECT_EQ(changed.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_FALSE(HashWholeFile(std::string(dir) + "/missing", 0).ok());
  ::unlink(path.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace walferry
