// Per-chunk codec speed: compress and decompress one chunk (default 1 MiB)
// with each codec and level. The chunk comes from WF_BENCH_INPUT (e.g. a
// pg_basebackup tar or WAL; chunks are taken from several offsets) or, when
// unset, from synthetic text-like data. Reports raw MB/s and the compression
// ratio as counters.
//   build/bench/compress_codec_bench --benchmark_filter=Gzip
//   WF_BENCH_INPUT=/var/tmp/walferry-bench/base.tar build/bench/compress_codec_bench
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compress/codec.h"

namespace walferry::compress {
namespace {

constexpr std::size_t kChunk = std::size_t{1} << 20;
constexpr int kSamples = 8;

// kSamples chunks of real or synthetic data.
const std::vector<std::vector<std::byte>>& Samples() {
  static const auto samples = [] {
    std::vector<std::vector<std::byte>> out;
    if (const char* path = std::getenv("WF_BENCH_INPUT")) {
      if (FILE* f = std::fopen(path, "rb")) {
        std::fseek(f, 0, SEEK_END);
        long size = std::ftell(f);
        for (int i = 0; i < kSamples && size > static_cast<long>(kChunk); ++i) {
          std::vector<std::byte> c(kChunk);
          std::fseek(f, (size - static_cast<long>(kChunk)) / kSamples * i, SEEK_SET);
          if (std::fread(c.data(), 1, kChunk, f) == kChunk) out.push_back(std::move(c));
        }
        std::fclose(f);
      }
    }
    std::mt19937 rng(7);
    while (out.size() < kSamples) {
      std::string s;
      while (s.size() < kChunk) {
        s += "INSERT INTO pgbench_accounts VALUES (" + std::to_string(rng() % 2000000) + ", " +
             std::to_string(rng() % 20) + ", 0, '                    ');\n";
        if (rng() % 8 == 0) s.append(64, '\0');
      }
      std::vector<std::byte> c(kChunk);
      std::memcpy(c.data(), s.data(), kChunk);
      out.push_back(std::move(c));
    }
    return out;
  }();
  return samples;
}

void Compress(benchmark::State& state, Algorithm algo) {
  const int level = static_cast<int>(state.range(0));
  auto codec = MakeCodec(algo, level);
  if (!codec.ok()) {
    state.SkipWithError(codec.error().message().c_str());
    return;
  }
  std::vector<std::byte> out((*codec)->Bound(kChunk));
  std::size_t in_bytes = 0, out_bytes = 0, i = 0;
  for (auto _ : state) {
    const auto& raw = Samples()[i++ % kSamples];
    auto n = (*codec)->Compress(raw, out);
    benchmark::DoNotOptimize(out.data());
    in_bytes += raw.size();
    out_bytes += n.ok() ? *n : 0;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(in_bytes));
  state.counters["ratio"] = out_bytes ? static_cast<double>(in_bytes) / out_bytes : 0;
  if (algo == Algorithm::kGzip) state.counters["libdeflate_level"] = LibdeflateLevel(level);
}

void Decompress(benchmark::State& state, Algorithm algo) {
  const int level = static_cast<int>(state.range(0));
  auto codec = MakeCodec(algo, level);
  auto dec = MakeDecoder(algo);
  std::vector<std::vector<std::byte>> frames;
  for (const auto& raw : Samples()) {
    std::vector<std::byte> f((*codec)->Bound(kChunk));
    f.resize(*(*codec)->Compress(raw, f));
    frames.push_back(std::move(f));
  }
  std::vector<std::byte> out(kChunk);
  std::size_t bytes = 0, i = 0;
  for (auto _ : state) {
    Status st = (*dec)->DecompressChunk(frames[i++ % kSamples], out);
    if (!st.ok()) {
      state.SkipWithError(st.error().message().c_str());
      return;
    }
    bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void BM_ZstdCompress(benchmark::State& s) { Compress(s, Algorithm::kZstd); }
void BM_GzipCompress(benchmark::State& s) { Compress(s, Algorithm::kGzip); }
void BM_ZstdDecompress(benchmark::State& s) { Decompress(s, Algorithm::kZstd); }
void BM_GzipDecompress(benchmark::State& s) { Decompress(s, Algorithm::kGzip); }

BENCHMARK(BM_ZstdCompress)->Arg(1)->Arg(3)->Arg(6)->Arg(9)->Arg(19)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GzipCompress)->DenseRange(1, 12)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ZstdDecompress)->Arg(3)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GzipDecompress)->Arg(6)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace walferry::compress
