// The whole CompressChunks pipeline on 2 cores: stream throughput and how busy
// the workers are kept (the reader/emitter on the calling thread must not idle
// them). Input: 64 MiB from WF_BENCH_INPUT (or synthetic text), served 4 times
// from memory; output discarded.
//   WF_BENCH_INPUT=/var/tmp/walferry-bench/wal.bin build/bench/compress_pipeline_bench
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

constexpr std::size_t kSample = std::size_t{64} << 20;
constexpr int kRepeat = 4;

const std::vector<std::byte>& Sample() {
  static const auto sample = [] {
    std::vector<std::byte> out(kSample);
    std::size_t got = 0;
    if (const char* path = std::getenv("WF_BENCH_INPUT")) {
      if (FILE* f = std::fopen(path, "rb")) {
        got = std::fread(out.data(), 1, kSample, f);
        std::fclose(f);
      }
    }
    std::mt19937 rng(11);
    std::string s;
    while (got + s.size() < kSample) {
      s += "UPDATE pgbench_accounts SET abalance = abalance + " + std::to_string(rng() % 5000) +
           " WHERE aid = " + std::to_string(rng() % 2000000) + ";\n";
      if (rng() % 16 == 0) s.append(128, '\0');
    }
    std::memcpy(out.data() + got, s.data(), kSample - got);
    return out;
  }();
  return sample;
}

class RepeatSource final : public ByteSource {
 public:
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    const auto& s = Sample();
    std::size_t total = kSample * kRepeat, done = 0;
    while (done < buf.size() && pos_ < total) {
      std::size_t off = pos_ % kSample;
      std::size_t n = std::min({buf.size() - done, kSample - off, total - pos_});
      std::memcpy(buf.data() + done, s.data() + off, n);
      done += n;
      pos_ += n;
    }
    return done;
  }
  const std::string& name() const override { return name_; }

 private:
  std::size_t pos_ = 0;
  std::string name_ = "bench";
};

void Pipeline(benchmark::State& state, Algorithm algo, int level) {
  Sample();
  PipelineOptions opt;
  opt.algorithm = algo;
  opt.level = level;
  opt.threads = static_cast<std::size_t>(state.range(0));
  std::size_t bytes = 0, out = 0;
  double busy = 0, idle = 0;
  for (auto _ : state) {
    RepeatSource src;
    PipelineStats stats;
    Status st = CompressChunks(src, opt, [&](const Chunk& c) {
      out += c.payload.size();
      return Status::Ok();
    }, &stats);
    if (!st.ok()) {
      state.SkipWithError(st.error().message().c_str());
      return;
    }
    bytes += stats.raw_bytes;
    busy += stats.worker_busy_seconds;
    idle += stats.worker_idle_seconds;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["ratio"] = static_cast<double>(bytes) / static_cast<double>(out);
  // Share of the workers' time spent compressing rather than waiting for input.
  state.counters["worker_busy_share"] = busy / (busy + idle);
}

void BM_PipelineZstd3(benchmark::State& s) { Pipeline(s, Algorithm::kZstd, 3); }
void BM_PipelineZstd1(benchmark::State& s) { Pipeline(s, Algorithm::kZstd, 1); }
void BM_PipelineGzip6(benchmark::State& s) { Pipeline(s, Algorithm::kGzip, 6); }

BENCHMARK(BM_PipelineZstd3)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_PipelineZstd1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);
BENCHMARK(BM_PipelineGzip6)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace walferry::compress
