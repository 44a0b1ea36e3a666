// Chunk codecs: zstd (libzstd), gzip (libdeflate), raw. Library error codes
// become walferry Errors only in this file's Zstd/Deflate helpers.
#include "compress/codec.h"

#include <libdeflate.h>
#include <zstd.h>

#include <cstring>
#include <string>

#include "compress/gzip_member.h"
#include "compress/zstd_internal.h"

namespace walferry::compress {
namespace {

constexpr std::uint32_t kZstdMagic = 0xFD2FB528u;

using internal::DeflateCompressorPtr;
using internal::DeflateDecompressorPtr;
using internal::ZstdCCtxPtr;
using internal::ZstdDCtxPtr;
using internal::ZstdError;

static_assert(ZSTD_COMPRESSBOUND(0) <= MaxCompressedSize(0));
static_assert(ZSTD_COMPRESSBOUND(1 << 20) <= MaxCompressedSize(1 << 20));
static_assert(ZSTD_COMPRESSBOUND(kMaxChunkSize) <= MaxCompressedSize(kMaxChunkSize));

// ---- zstd -------------------------------------------------------------------

class ZstdCodec final : public Codec {
 public:
  explicit ZstdCodec(int level) : cctx_(ZSTD_createCCtx()) {
    if (!cctx_) return;
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_checksumFlag, 1);
    ZSTD_CCtx_setParameter(cctx_.get(), ZSTD_c_contentSizeFlag, 1);
  }
  bool ok() const { return cctx_ != nullptr; }

  std::size_t Bound(std::size_t n) const override { return ZSTD_compressBound(n); }

  Result<std::size_t> Compress(std::span<const std::byte> src, std::span<std::byte> dst) override {
    if (dst.size() < Bound(src.size())) {
      return Error(ErrorCode::kNoSpace, "zstd: output buffer smaller than the compress bound");
    }
    std::size_t r = ZSTD_compress2(cctx_.get(), dst.data(), dst.size(), src.data(), src.size());
    if (ZSTD_isError(r)) return ZstdError(r, "zstd compress", ErrorCode::kInternal);
    return r;
  }

 private:
  ZstdCCtxPtr cctx_;
};

class ZstdDecoder final : public Decoder {
 public:
  ZstdDecoder() : dctx_(ZSTD_createDCtx()) {}
  bool ok() const { return dctx_ != nullptr; }

  Status DecompressChunk(std::span<const std::byte> src, std::span<std::byte> dst) override {
    if (src.size() < 4 || LoadLe<std::uint32_t>(src.data()) != kZstdMagic) {
      return Error(ErrorCode::kCorrupt, "zstd frame: bad magic");
    }
    std::size_t frame = ZSTD_findFrameCompressedSize(src.data(), src.size());
    if (ZSTD_isError(frame)) return ZstdError(frame, "zstd frame");
    if (frame != src.size()) {
      return Error(ErrorCode::kCorrupt, "zstd frame: trailing bytes after the frame");
    }
    unsigned long long content = ZSTD_getFrameContentSize(src.data(), src.size());
    if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != dst.size()) {
      return Error(ErrorCode::kCorrupt, "zstd frame: content size " + std::to_string(content) +
                                            " where " + std::to_string(dst.size()) + " expected");
    }
    std::size_t r = ZSTD_decompressDCtx(dctx_.get(), dst.data(), dst.size(), src.data(), src.size());
    if (ZSTD_isError(r)) return ZstdError(r, "zstd frame");
    if (r != dst.size()) {
      return Error(ErrorCode::kCorrupt, "zstd frame: decoded " + std::to_string(r) + " bytes where " +
                                            std::to_string(dst.size()) + " expected");
    }
    return Status::Ok();
  }

 private:
  ZstdDCtxPtr dctx_;
};

// ---- gzip -------------------------------------------------------------------

class GzipCodec final : public Codec {
 public:
  explicit GzipCodec(int libdeflate_level)
      : compressor_(libdeflate_alloc_compressor(libdeflate_level)) {}

  bool ok() const { return compressor_ != nullptr; }

  std::size_t Bound(std::size_t n) const override {
    return gzip::kHeaderSize + libdeflate_deflate_compress_bound(compressor_.get(), n) + gzip::kTrailerSize;
  }

  Result<std::size_t> Compress(std::span<const std::byte> src, std::span<std::byte> dst) override {
    if (src.size() > kMaxChunkSize) {
      return Error(ErrorCode::kInvalidArgument, "gzip: chunk larger than the maximum chunk size");
    }
    if (dst.size() < Bound(src.size())) {
      return Error(ErrorCode::kNoSpace, "gzip: output buffer smaller than the compress bound");
    }
    std::size_t n = libdeflate_deflate_compress(
        compressor_.get(), src.data(), src.size(), dst.data() + gzip::kHeaderSize,
        dst.size() - gzip::kHeaderSize - gzip::kTrailerSize);
    if (n == 0) return Error(ErrorCode::kInternal, "gzip: deflate output did not fit its bound");
    const std::size_t total = gzip::kHeaderSize + n + gzip::kTrailerSize;
    const auto raw = static_cast<std::uint32_t>(src.size());
    gzip::WriteHeader(dst.data(), static_cast<std::uint32_t>(total), raw);
    std::byte* trailer = dst.data() + gzip::kHeaderSize + n;
    StoreLe<std::uint32_t>(trailer, libdeflate_crc32(0, src.data(), src.size()));
    StoreLe<std::uint32_t>(trailer + 4, raw);
    return total;
  }

 private:
  DeflateCompressorPtr compressor_;
};

class GzipDecoder final : public Decoder {
 public:
  GzipDecoder() : d_(libdeflate_alloc_decompressor()) {}
  bool ok() const { return d_ != nullptr; }

  Status DecompressChunk(std::span<const std::byte> src, std::span<std::byte> dst) override {
    std::size_t in_used = 0, out_made = 0;
    // libdeflate parses the header (any flags), inflates, and checks CRC32 and ISIZE.
    libdeflate_result r = libdeflate_gzip_decompress_ex(d_.get(), src.data(), src.size(), dst.data(),
                                                        dst.size(), &in_used, &out_made);
    switch (r) {
      case LIBDEFLATE_SUCCESS: break;
      case LIBDEFLATE_BAD_DATA:
        return Error(ErrorCode::kCorrupt, "gzip member: bad deflate data or CRC32/ISIZE mismatch");
      case LIBDEFLATE_SHORT_OUTPUT:
      case LIBDEFLATE_INSUFFICIENT_SPACE:
        return Error(ErrorCode::kCorrupt, "gzip member: size differs from the recorded size");
    }
    if (out_made != dst.size()) {
      return Error(ErrorCode::kCorrupt, "gzip member: size differs from the recorded size");
    }
    if (in_used != src.size()) {
      return Error(ErrorCode::kCorrupt, "gzip member: trailing bytes after the member");
    }
    return Status::Ok();
  }

 private:
  DeflateDecompressorPtr d_;
};

// ---- raw --------------------------------------------------------------------

class RawCodec final : public Codec {
 public:
  std::size_t Bound(std::size_t n) const override { return n; }
  Result<std::size_t> Compress(std::span<const std::byte> src, std::span<std::byte> dst) override {
    if (dst.size() < src.size()) return Error(ErrorCode::kNoSpace, "raw: output buffer too small");
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size());
    return src.size();
  }
};

class RawDecoder final : public Decoder {
 public:
  Status DecompressChunk(std::span<const std::byte> src, std::span<std::byte> dst) override {
    if (src.size() != dst.size()) {
      return Error(ErrorCode::kCorrupt, "raw chunk: " + std::to_string(src.size()) +
                                            " bytes where " + std::to_string(dst.size()) +
                                            " expected");
    }
    if (!src.empty()) std::memcpy(dst.data(), src.data(), src.size());
    return Status::Ok();
  }
};

}  // namespace

std::string_view AlgorithmName(Algorithm a) {
  switch (a) {
    case Algorithm::kRaw: return "raw";
    case Algorithm::kZstd: return "zstd";
    case Algorithm::kGzip: return "gzip";
  }
  return "unknown";
}

Result<Algorithm> DetectAlgorithm(std::span<const std::byte> head) {
  if (head.size() >= 4 && LoadLe<std::uint32_t>(head.data()) == kZstdMagic) return Algorithm::kZstd;
  if (head.size() >= 3 && std::to_integer<int>(head[0]) == gzip::kId1 &&
      std::to_integer<int>(head[1]) == gzip::kId2 &&
      std::to_integer<int>(head[2]) == gzip::kCmDeflate) {
    return Algorithm::kGzip;
  }
  return Error(ErrorCode::kInvalidArgument, "not a zstd or gzip stream");
}

int LibdeflateLevel(int gzip_level) {
  // Our gzip level N maps onto the fastest libdeflate level whose output is
  // within ~1% of pigz -N's on real base backups and WAL (docs/compression.md):
  // -6 -> 5 (libdeflate 4 is 4% larger than pigz -6 on WAL), -9 -> 7; 10..12 are
  // libdeflate's near-optimal parsing, beyond what zlib offers.
  static constexpr int kMap[13] = {0, 1, 1, 2, 3, 4, 5, 6, 6, 7, 10, 11, 12};
  if (gzip_level < 1) return 1;
  if (gzip_level > 12) return 12;
  return kMap[gzip_level];
}

int DefaultLevel(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kZstd: return 3;
    case Algorithm::kGzip: return 6;
    case Algorithm::kRaw: return 0;
  }
  return 0;
}

Result<int> MaxLevel(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kZstd: return 19;
    case Algorithm::kGzip: return 12;
    case Algorithm::kRaw: return 0;
  }
  return Error(ErrorCode::kInvalidArgument, "unknown algorithm");
}

Result<std::unique_ptr<Codec>> MakeCodec(Algorithm algorithm, int level) {
  switch (algorithm) {
    case Algorithm::kRaw: return std::unique_ptr<Codec>(new RawCodec());
    case Algorithm::kZstd:
      if (level < 1 || level > 19) {
        return Error(ErrorCode::kInvalidArgument,
                     "zstd level " + std::to_string(level) + " out of range 1..19");
      }
      {
        auto c = std::make_unique<ZstdCodec>(level);
        if (!c->ok()) return Error(ErrorCode::kInternal, "libzstd: cannot allocate a context");
        return std::unique_ptr<Codec>(std::move(c));
      }
    case Algorithm::kGzip: {
      if (level < 1 || level > 12) {
        return Error(ErrorCode::kInvalidArgument,
                     "gzip level " + std::to_string(level) + " out of range 1..12");
      }
      auto c = std::make_unique<GzipCodec>(LibdeflateLevel(level));
      if (!c->ok()) return Error(ErrorCode::kInternal, "libdeflate: cannot allocate a compressor");
      return std::unique_ptr<Codec>(std::move(c));
    }
  }
  return Error(ErrorCode::kInvalidArgument, "unknown compression algorithm");
}

Result<std::unique_ptr<Decoder>> MakeDecoder(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kRaw: return std::unique_ptr<Decoder>(new RawDecoder());
    case Algorithm::kZstd: {
      auto d = std::make_unique<ZstdDecoder>();
      if (!d->ok()) return Error(ErrorCode::kInternal, "libzstd: cannot allocate a context");
      return std::unique_ptr<Decoder>(std::move(d));
    }
    case Algorithm::kGzip: {
      auto d = std::make_unique<GzipDecoder>();
      if (!d->ok()) return Error(ErrorCode::kInternal, "libdeflate: cannot allocate a decompressor");
      return std::unique_ptr<Decoder>(std::move(d));
    }
  }
  return Error(ErrorCode::kInvalidArgument, "unknown compression algorithm");
}

}  // namespace walferry::compress
