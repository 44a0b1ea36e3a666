// Reading and comparing the objects the S3 archive stores: suffixes, the
// wf-size/wf-xxh3 metadata, the verified read through a temp file.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#include "archive/store_codec.h"
#include "core/bytes.h"
#include "core/io.h"
#include "store_s3/s3_internal.h"

namespace walferry::store_s3 {
namespace {

// A sink that hashes what passes through and checks size and XXH3-128 against
// the object's metadata before finishing the real sink.
class VerifyingSink final : public ByteSink {
 public:
  VerifyingSink(ByteSink& inner, std::string key, std::uint64_t size, Hash128 want)
      : inner_(inner), key_(std::move(key)), size_(size), want_(want) {}
  Status Write(std::span<const std::byte> d) override {
    hash_.Update(d);
    got_ += d.size();
    return inner_.Write(d);
  }
  Status Finish() override {
    if (got_ != size_ || hash_.Digest() != want_) {
      return Error(ErrorCode::kCorrupt, key_ + ": content does not match its stored XXH3-128/size (" +
                                            std::to_string(got_) + " bytes read, " + std::to_string(size_) +
                                            " expected)");
    }
    return inner_.Finish();
  }

 private:
  ByteSink& inner_;
  std::string key_;
  std::uint64_t size_, got_ = 0;
  Hash128 want_;
  Xxh3Stream hash_;
};

Hash128 HashFromHex(const std::string& hex, bool* ok) {
  Hash128 h;
  std::uint64_t hi = 0, lo = 0;
  *ok = hex.size() == 32;
  if (*ok) {
    auto a = std::from_chars(hex.data(), hex.data() + 16, hi, 16);
    auto b = std::from_chars(hex.data() + 16, hex.data() + 32, lo, 16);
    *ok = a.ec == std::errc() && b.ec == std::errc() && a.ptr == hex.data() + 16 && b.ptr == hex.data() + 32;
  }
  h.high = hi;
  h.low = lo;
  return h;
}

}  // namespace

std::string RandomHex(int bytes) {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>(rd() & 0xff));
  return HexEncode(s);
}

std::pair<std::string, StoreFormat> SplitSuffix(std::string_view file) {
  if (file.ends_with(".zst")) return {std::string(file.substr(0, file.size() - 4)), StoreFormat::kZstd};
  if (file.ends_with(".gz")) return {std::string(file.substr(0, file.size() - 3)), StoreFormat::kGzip};
  return {std::string(file), StoreFormat::kRaw};
}

Status ReadObject(Shared& sh, const std::string& key, StoreFormat format, ByteSink& sink) {
  WF_ASSIGN(auto c, sh.pool->Acquire());
  WF_ASSIGN(s3::ObjectInfo info, c->Head(key));
  std::string body_key = key;
  if (auto it = info.metadata.find(kMetaData); it != info.metadata.end()) body_key = it->second;
  std::uint64_t size = 0;
  bool hash_ok = false;
  Hash128 want = HashFromHex(info.metadata[kMetaHash], &hash_ok);
  if (!hash_ok || !ParseNum(info.metadata[kMetaSize], &size)) {
    return Error(ErrorCode::kCorrupt, key + ": object has no walferry wf-size/wf-xxh3 metadata");
  }
  // Stored bytes go to an unnamed temp file, then through the archive's
  // verified reader (frame checksums), then through the whole-stream check.
  const char* tmpdir = std::getenv("TMPDIR");
  int fd = ::open(tmpdir && *tmpdir ? tmpdir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "temp file for " + key);
  UniqueFd tmp(fd);
  auto fsink = FdSink(tmp.get(), "temp file for " + key);
  WF_TRY(c->Get(body_key, *fsink));
  if (::lseek(tmp.get(), 0, SEEK_SET) != 0) return ErrnoError(errno, "seek temp file for " + key);
  VerifyingSink v(sink, key, size, want);
  return archive::ReadStored(tmp.get(), key, format, v);
}

Result<bool> SameContent(s3::Client& c, const std::string& key, std::uint64_t size, const Hash128& h) {
  WF_ASSIGN(s3::ObjectInfo info, c.Head(key));
  std::uint64_t their_size = 0;
  bool ok = false;
  Hash128 theirs = HashFromHex(info.metadata[kMetaHash], &ok);
  if (ok && ParseNum(info.metadata[kMetaSize], &their_size)) return their_size == size && theirs == h;
  return false;  // not written by walferry: treat as different, keep it
}

}  // namespace walferry::store_s3
