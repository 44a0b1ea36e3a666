// libFuzzer target for DecompressStream (compress/codec.h) on zstd and gzip
// input, in parallel (2 threads) and on one thread: never a crash, a leak or
// unbounded memory; the error, if any, is kCorrupt or kInvalidArgument; both
// thread counts agree on success and on the output.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>

#include "compress/codec.h"
#include "core/hash.h"

using namespace walferry;

namespace {

class MemSource final : public ByteSource {
 public:
  MemSource(std::span<const std::byte> d) : d_(d) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    // Short reads, to exercise the window logic.
    std::size_t n = std::min({buf.size(), d_.size() - pos_, std::size_t{4093}});
    if (n) std::memcpy(buf.data(), d_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  const std::string& name() const override { return name_; }

 private:
  std::span<const std::byte> d_;
  std::size_t pos_ = 0;
  std::string name_ = "fuzz";
};

// Hashes the output; refuses more than 64 MiB (a decompression bomb is not a bug).
class HashSink final : public ByteSink {
 public:
  Status Write(std::span<const std::byte> d) override {
    total_ += d.size();
    if (total_ > (64u << 20)) return Error(ErrorCode::kNoSpace, "output cap");
    h_.Update(d);
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  Hash128 Digest() const { return h_.Digest(); }
  bool capped() const { return total_ > (64u << 20); }

 private:
  Xxh3Stream h_;
  std::uint64_t total_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  Status results[2];
  Hash128 digests[2];
  bool capped = false;
  for (int i = 0; i < 2; ++i) {
    MemSource src(in);
    HashSink sink;
    results[i] = compress::DecompressStream(src, sink, i == 0 ? 2 : 1);
    digests[i] = sink.Digest();
    capped = capped || sink.capped();
    if (!results[i].ok()) {
      auto c = results[i].error().code();
      if (c != ErrorCode::kCorrupt && c != ErrorCode::kInvalidArgument && c != ErrorCode::kNoSpace) std::abort();
    }
  }
  if (!capped) {
    if (results[0].ok() != results[1].ok()) std::abort();
    if (results[0].ok() && digests[0] != digests[1]) std::abort();
  }
  return 0;
}
