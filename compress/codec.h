// Chunk codecs and the parallel stream compressor/decompressor.
//
// A stream is cut into raw chunks (default 1 MiB); each chunk becomes one
// self-contained zstd frame or gzip member, so the concatenation is a standard
// .zst/.gz file that stock `zstd -d`/`gzip -d` read, and every chunk can be
// decompressed on its own (in parallel, or by a receiver verifying it).
//
// Thread-safety: a Codec/Decoder is not thread-safe; each worker owns one and
// reuses it. The stream functions are called from one thread and run their own
// workers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>

#include "core/result.h"
#include "core/stream.h"

namespace walferry::compress {

enum class Algorithm : unsigned char { kRaw = 0, kZstd = 1, kGzip = 2 };

std::string_view AlgorithmName(Algorithm a);  // "raw", "zstd", "gzip"
// Detects the format from the first bytes of a stream (zstd magic, gzip magic);
// kInvalidArgument "not a zstd or gzip stream" otherwise.
Result<Algorithm> DetectAlgorithm(std::span<const std::byte> head);

class Codec {
 public:
  virtual ~Codec() = default;
  // Largest output Compress can produce for `n` input bytes.
  virtual std::size_t Bound(std::size_t n) const = 0;
  // Compresses all of `src` into `dst` as one self-contained frame/member.
  // Returns the bytes written; kNoSpace if dst is smaller than Bound.
  virtual Result<std::size_t> Compress(std::span<const std::byte> src,
                                       std::span<std::byte> dst) = 0;
};

// levels: zstd 1..19, gzip 1..12 (see docs for the mapping onto libdeflate).
// kInvalidArgument when `level` is outside the algorithm's range. kRaw copies.
Result<std::unique_ptr<Codec>> MakeCodec(Algorithm algorithm, int level);
int DefaultLevel(Algorithm algorithm);

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Decompresses exactly one frame/member `src` whose raw size is known to be
  // `dst.size()`; verifies the frame checksum (zstd content checksum, gzip CRC32).
  // kCorrupt on any mismatch, trailing bytes, or a size other than dst.size().
  virtual Status DecompressChunk(std::span<const std::byte> src, std::span<std::byte> dst) = 0;
};
Result<std::unique_ptr<Decoder>> MakeDecoder(Algorithm algorithm);

// One compressed chunk as the pipeline emits it, in order.
struct Chunk {
  std::uint64_t index = 0;       // 0, 1, 2, ...
  std::uint64_t raw_offset = 0;  // offset of the raw bytes in the stream
  std::uint32_t raw_len = 0;
  std::uint64_t raw_xxh3 = 0;    // XXH3-64 of the raw bytes
  std::span<const std::byte> raw;      // valid only during the callback
  std::span<const std::byte> payload;  // the frame/member; valid only during the callback
};

struct PipelineOptions {
  Algorithm algorithm = Algorithm::kZstd;
  int level = 3;
  std::size_t chunk_size = 1 << 20;
  std::size_t threads = 0;        // 0 = all cores
  std::size_t in_flight = 0;      // chunks in flight; 0 = 2 * threads + 2
  std::uint64_t skip_chunks = 0;  // resume: read but do not compress/emit the first N chunks
};

// Reads `src` to EOF, compresses chunks in parallel, and calls `emit` for each
// chunk in index order from the calling thread. Memory is bounded by
// in_flight * (chunk_size + Bound(chunk_size)) whatever the stream length.
// Stops at the first error from reading, compressing or `emit`, and returns it.
// An empty stream emits nothing (callers that need an empty frame add one).
Status CompressChunks(ByteSource& src, const PipelineOptions& options,
                      const std::function<Status(const Chunk&)>& emit);

// Convenience: CompressChunks writing each payload to `sink`; an empty input
// produces one empty frame so the output is a valid .zst/.gz.
Status CompressStream(ByteSource& src, ByteSink& sink, const PipelineOptions& options);

// Decompresses any zstd or gzip stream (multi-frame/multi-member, from us or
// from stock tools) to `sink`, in parallel where the framing allows (our gzip
// members carry their size in an extra field; zstd frames carry their content
// size). Verifies every checksum. kCorrupt on corrupt or truncated input,
// kInvalidArgument on input that is neither format.
Status DecompressStream(ByteSource& src, ByteSink& sink, std::size_t threads = 0);

}  // namespace walferry::compress
