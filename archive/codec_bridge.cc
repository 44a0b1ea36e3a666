// The archive's only calls into the compression module: recompressing chunks
// for a store format that differs from the received frames, and decompressing
// stored entries.
#include <vector>

#include "archive/archive_internal.h"
#include "compress/codec.h"

namespace walferry::archive {
namespace {

class RecompressorImpl final : public Recompressor {
 public:
  explicit RecompressorImpl(std::unique_ptr<compress::Codec> codec) : codec_(std::move(codec)) {}

  Result<std::span<const std::byte>> Compress(std::span<const std::byte> raw) override {
    const std::size_t bound = codec_->Bound(raw.size());
    if (out_.size() < bound) out_.resize(bound);  // grows to one chunk's bound, then reused
    WF_ASSIGN(std::size_t n, codec_->Compress(raw, out_));
    return std::span<const std::byte>(out_.data(), n);
  }

 private:
  std::unique_ptr<compress::Codec> codec_;
  std::vector<std::byte> out_;
};

}  // namespace

Result<std::unique_ptr<Recompressor>> Recompressor::Make(StoreFormat format) {
  const compress::Algorithm alg = StoreAlgorithm(format);
  WF_ASSIGN(auto codec, compress::MakeCodec(alg, compress::DefaultLevel(alg)));
  return std::unique_ptr<Recompressor>(new RecompressorImpl(std::move(codec)));
}

namespace internal {

Status Decompress(int fd, const std::string& name, ByteSink& sink, std::size_t threads) {
  auto src = FdSource(fd, name, /*owned=*/false);
  return compress::DecompressStream(*src, sink, threads);
}

}  // namespace internal
}  // namespace walferry::archive
