// Chunk codecs and the parallel stream compressor/decompressor.
//
// A stream is cut into raw chunks (default 1 MiB); each chunk becomes one
// self-contained zstd frame or gzip member, so the concatenation is a standard
// .zst/.gz file that stock `zstd -d`/`gzip -d` read, and every chunk can be
// decompressed on its own (in parallel, or by a receiver verifying it).
//
// Thread-safety: a Codec/Decoder is not thread-safe; each worker owns one and
// reuses it. The stream functions are called from one thread and run their
// parallel part on a ThreadPool (core/thread_pool.h) of their own.
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
// Highest level of an algorithm (zstd 19, gzip 12, raw 0).
Result<int> MaxLevel(Algorithm algorithm);
// The libdeflate level our gzip level 1..12 maps onto (docs/compression.md).
int LibdeflateLevel(int gzip_level);

// Largest raw chunk the codecs and the pipeline accept (gzip members record
// their sizes in 32 bits).
inline constexpr std::size_t kMaxChunkSize = std::size_t{256} << 20;

// An upper bound of Codec::Bound(n) for every codec and level: the most bytes
// one compressed chunk of `n` raw bytes may take (zstd's bound is
// n + n/256 + 64, libdeflate's gzip bound n + ~n/1000 + 46; both checked in
// codec.cc and by compress_codec_test). The wire protocol derives its CHUNK
// payload limit from it, so an encoder never produces a frame a parser refuses.
constexpr std::size_t MaxCompressedSize(std::size_t n) { return n + n / 128 + 4096; }

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

// Optional figures from one CompressChunks run (tests, benchmarks).
struct PipelineStats {
  std::uint64_t chunks = 0;             // chunks emitted
  std::uint64_t raw_bytes = 0;          // bytes read from the source
  std::size_t buffers_allocated = 0;    // raw buffers the pool ever allocated (<= in_flight)
  std::size_t in_flight = 0;            // the in_flight bound in force
  // Summed over the pool's workers: seconds spent hashing and compressing,
  // and the rest of the run's wall time times the worker count (waiting).
  double worker_busy_seconds = 0;
  double worker_idle_seconds = 0;
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
// chunk in index order from the calling thread. The chunks are read and
// compressed by the tasks of a core/thread_pool.h pool of `threads` workers
// (one codec each): `src` is read by those workers, one Read at a time in
// stream order (never concurrently), so it must not depend on the calling
// thread. Memory is bounded by
// in_flight * (chunk_size + Bound(chunk_size)) whatever the stream length.
// Stops at the first error from reading, compressing or `emit`, and returns it.
// An empty stream emits nothing (callers that need an empty frame add one).
// kInvalidArgument for a level outside the algorithm's range or a chunk_size
// outside 1..kMaxChunkSize. `stats`, when given, is filled in on return.
Status CompressChunks(ByteSource& src, const PipelineOptions& options,
                      const std::function<Status(const Chunk&)>& emit,
                      PipelineStats* stats = nullptr);

// Convenience: CompressChunks writing each payload to `sink`; an empty input
// produces one empty frame so the output is a valid .zst/.gz.
Status CompressStream(ByteSource& src, ByteSink& sink, const PipelineOptions& options);

// `src` is read by the `threads` workers of a core/thread_pool.h pool (one
// Read at a time, never concurrently) and by the calling thread for streamed
// frames; `sink` is written by the calling thread only.
// Decompresses any zstd or gzip stream (multi-frame/multi-member, from us or
// from stock tools) to `sink`, in parallel where the framing allows (our gzip
// members carry their size in an extra field; zstd frames carry their content
// size). Verifies every checksum. kCorrupt on corrupt or truncated input,
// kInvalidArgument on input that is neither format.
// Members/frames without a recorded size (stock gzip/pigz output, streamed zstd,
// frames larger than 64 MiB) are decoded in order by the calling thread with a
// bounded window (zlib inflate / ZSTD_decompressStream): memory never grows
// with the input size. Trailing bytes that are not another frame/member are
// kCorrupt. An empty input is kInvalidArgument.
Status DecompressStream(ByteSource& src, ByteSink& sink, std::size_t threads = 0);

// Most bytes of memory DecompressStream(src, sink, threads) allocates at once
// for a stream of `stream_size` bytes that begins with `head` (its first
// bytes; 4 KiB hold any header walferry writes), when no later frame/member
// is larger than the first, as in everything walferry writes (one chunk size
// per stream): the slots, the input window and the decoders, or for a frame it
// must stream, the stream buffers and the window its header asks for. For a
// receiver's memory budget; an upper bound of allocations, not of touched pages.
std::uint64_t DecodeMemory(std::span<const std::byte> head, std::uint64_t stream_size, std::size_t threads = 0);

}  // namespace walferry::compress
