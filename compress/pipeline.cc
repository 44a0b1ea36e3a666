// The parallel chunk compressor. The calling thread submits one task per free
// slot to a ThreadPool whose workers own one Codec each; a task reads the next
// raw chunk (under read_mu_, so whichever worker is free reads: no thread hop
// between reading and compressing), hashes and compresses it into the slot its
// index names. The calling thread emits finished slots in index order. At
// most `in_flight` tasks exist between submit and emit, so memory is bounded
// whatever the stream length, and Submit never blocks (the pool's queue holds
// in_flight tasks).
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <vector>

#include "compress/codec.h"
#include "compress/pipeline_internal.h"
#include "core/buffer_pool.h"
#include "core/hash.h"
#include "core/thread_pool.h"

namespace walferry::compress {
namespace {

using Clock = std::chrono::steady_clock;

// One task's result. Every task takes the next index when it reads, so the
// outstanding tasks fill distinct slots; a task that finds the input already
// ended (or fails to read) still fills its slot, as an end (or error) marker.
// The task writes every field, then Sets done; the calling thread reads them
// after done and Resets it before the slot's next task.
struct Job {
  std::uint64_t index = 0;
  std::uint64_t raw_offset = 0;
  PooledBuffer raw;
  PooledBuffer out;
  std::size_t out_len = 0;
  std::uint64_t xxh = 0;
  Status status;
  bool end = false;  // no chunk: the input ended before this index
  double busy_seconds = 0;
  DoneFlag done;
};

// One CompressChunks run.
class ChunkPipeline {
 public:
  ChunkPipeline(ByteSource& src, const PipelineOptions& options, std::vector<std::unique_ptr<Codec>> codecs,
                std::size_t in_flight)
      : src_(src),
        chunk_size_(options.chunk_size),
        in_flight_(in_flight),
        codecs_(std::move(codecs)),
        raw_pool_(chunk_size_, in_flight_),
        out_pool_(codecs_[0]->Bound(chunk_size_), in_flight_),
        slots_(in_flight_) {
    pool_.emplace(codecs_.size(), in_flight_);
  }

  // Resume, before Run: reads and drops the first `chunks` chunks on the
  // calling thread without compressing them.
  Status Skip(std::uint64_t chunks) {
    if (chunks == 0) return Status::Ok();
    PooledBuffer scratch = raw_pool_.Acquire();
    while (next_index_ < chunks && !source_done_) {
      WF_ASSIGN(std::size_t n, ReadFully(src_, scratch.whole()));
      raw_offset_ += n;
      if (n > 0) ++next_index_;
      if (n < chunk_size_) source_done_ = true;
    }
    next_emit_ = submitted_ = first_index_ = next_index_;
    return Status::Ok();
  }

  // Reads, compresses and emits to the end of the input or the first error,
  // in stream order. On an error the tasks still in flight see stop_ and
  // skip their work; either way the pool is drained and joined on return.
  Status Run(const std::function<Status(const Chunk&)>& emit) {
    const auto start = Clock::now();
    Status st = Loop(emit);
    if (!st.ok()) stop_.store(true, std::memory_order_relaxed);
    pool_.reset();
    elapsed_seconds_ = std::chrono::duration<double>(Clock::now() - start).count();
    return st;
  }

  // After Run (no task runs any more).
  void FillStats(PipelineStats& stats) const {
    stats.chunks = next_emit_ - first_index_;
    stats.raw_bytes = raw_offset_;
    stats.buffers_allocated = raw_pool_.allocated();
    stats.in_flight = in_flight_;
    stats.worker_busy_seconds = busy_seconds_;
    // The workers' time not spent compressing while Run lasted.
    const double capacity = elapsed_seconds_ * static_cast<double>(codecs_.size());
    stats.worker_idle_seconds = capacity > busy_seconds_ ? capacity - busy_seconds_ : 0;
  }

 private:
  Job& Slot(std::uint64_t index) { return slots_[index % in_flight_]; }

  Status Loop(const std::function<Status(const Chunk&)>& emit) {
    if (source_done_) return Status::Ok();  // Skip reached the end
    while (true) {
      // Keep every slot busy: the workers never wait for this thread while
      // a slot is free.
      while (submitted_ - next_emit_ < in_flight_) {
        Slot(submitted_++).done.Reset();
        pool_->Submit([this](std::size_t worker) { ReadAndCompress(*codecs_[worker]); });
      }
      Job& job = Slot(next_emit_);
      job.done.Wait();
      WF_TRY(job.status);
      if (job.end) return Status::Ok();  // every later slot is an end too
      WF_TRY(EmitNext(job, emit));
    }
  }

  // On a pool worker.
  void ReadAndCompress(Codec& codec) {
    std::unique_lock lk(read_mu_);
    const std::uint64_t index = next_index_++;
    Job& job = Slot(index);
    job.index = index;
    job.end = source_done_ || stop_.load(std::memory_order_relaxed);
    if (job.end) {
      lk.unlock();
      job.status = Status::Ok();
      job.done.Set();
      return;
    }
    const auto t0 = Clock::now();
    PooledBuffer raw = raw_pool_.Acquire();  // never blocks: at most in_flight tasks
    auto r = ReadFully(src_, raw.whole());
    const std::size_t n = r.ok() ? *r : 0;
    if (!r.ok() || n < chunk_size_) source_done_ = true;
    job.raw_offset = raw_offset_;
    raw_offset_ += n;
    lk.unlock();
    job.status = r.ok() ? Status::Ok() : Status(r.error());
    job.end = r.ok() && n == 0;
    if (r.ok() && n > 0) {
      raw.set_size(n);
      job.raw = std::move(raw);
      Compress(codec, job);
    }
    job.busy_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    job.done.Set();
  }

  void Compress(Codec& codec, Job& job) {
    job.xxh = Xxh3_64(job.raw.bytes());
    job.out = out_pool_.Acquire();  // never blocks either
    auto r = codec.Compress(job.raw.bytes(), job.out.whole());
    job.status = r.ok() ? Status::Ok() : Status(r.error());
    job.out_len = r.ok() ? *r : 0;
  }

  Status EmitNext(Job& job, const std::function<Status(const Chunk&)>& emit) {
    busy_seconds_ += job.busy_seconds;
    Chunk chunk;
    chunk.index = job.index;
    chunk.raw_offset = job.raw_offset;
    chunk.raw_len = static_cast<std::uint32_t>(job.raw.size());
    chunk.raw_xxh3 = job.xxh;
    chunk.raw = job.raw.bytes();
    chunk.payload = std::span<const std::byte>(job.out.data(), job.out_len);
    WF_TRY(emit(chunk));
    job.raw = PooledBuffer();
    job.out = PooledBuffer();
    ++next_emit_;
    return Status::Ok();
  }

  ByteSource& src_;
  const std::size_t chunk_size_;
  const std::size_t in_flight_;
  std::vector<std::unique_ptr<Codec>> codecs_;  // one per pool worker
  BufferPool raw_pool_;
  BufferPool out_pool_;
  std::vector<Job> slots_;
  std::atomic<bool> stop_{false};
  // The input, guarded by read_mu_ once Run has started (Skip runs before).
  std::mutex read_mu_;
  std::uint64_t next_index_ = 0;  // index of the next task to read
  std::uint64_t raw_offset_ = 0;
  bool source_done_ = false;
  // The calling thread's.
  std::uint64_t first_index_ = 0;
  std::uint64_t submitted_ = 0;  // index one past the last submitted task
  std::uint64_t next_emit_ = 0;
  double busy_seconds_ = 0, elapsed_seconds_ = 0;
  // Last: reset by Run, and in any case destroyed (drained, joined) before
  // everything its tasks use.
  std::optional<ThreadPool> pool_;
};

}  // namespace

Result<std::size_t> ReadFully(ByteSource& src, std::span<std::byte> buf) {
  std::size_t got = 0;
  while (got < buf.size()) {
    WF_ASSIGN(std::size_t n, src.Read(buf.subspan(got)));
    if (n == 0) break;
    got += n;
  }
  return got;
}

std::size_t ResolveThreads(std::size_t threads) {
  return threads ? threads : ThreadPool::DefaultThreads();
}

Status CompressChunks(ByteSource& src, const PipelineOptions& options,
                      const std::function<Status(const Chunk&)>& emit, PipelineStats* stats) {
  if (options.chunk_size < 1 || options.chunk_size > kMaxChunkSize) {
    return Error(ErrorCode::kInvalidArgument,
                 "chunk size " + std::to_string(options.chunk_size) + " out of range 1.." +
                     std::to_string(kMaxChunkSize));
  }
  const std::size_t threads = ResolveThreads(options.threads);
  const std::size_t in_flight = options.in_flight ? options.in_flight : 2 * threads + 2;
  std::vector<std::unique_ptr<Codec>> codecs;
  for (std::size_t i = 0; i < threads; ++i) {
    WF_ASSIGN(auto codec, MakeCodec(options.algorithm, options.level));
    codecs.push_back(std::move(codec));
  }
  ChunkPipeline pipeline(src, options, std::move(codecs), in_flight);
  Status result = pipeline.Skip(options.skip_chunks);
  if (result.ok()) result = pipeline.Run(emit);
  if (stats) pipeline.FillStats(*stats);
  return result;
}

Status CompressStream(ByteSource& src, ByteSink& sink, const PipelineOptions& options) {
  std::uint64_t emitted = 0;
  WF_TRY(CompressChunks(src, options, [&](const Chunk& c) {
    ++emitted;
    return sink.Write(c.payload);
  }));
  if (emitted == 0 && options.skip_chunks == 0) {
    WF_ASSIGN(auto codec, MakeCodec(options.algorithm, options.level));
    std::vector<std::byte> frame(codec->Bound(0));
    WF_ASSIGN(std::size_t n, codec->Compress({}, frame));
    WF_TRY(sink.Write(std::span<const std::byte>(frame.data(), n)));
  }
  return sink.Finish();
}

}  // namespace walferry::compress
