// The parallel chunk compressor. The calling thread reads raw chunks into
// pooled buffers and emits finished chunks in index order; N worker threads,
// each owning one Codec, compress. At most `in_flight` chunks exist between
// read and emit, so memory is bounded whatever the stream length.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "compress/codec.h"
#include "compress/pipeline_internal.h"
#include "core/buffer_pool.h"
#include "core/hash.h"
#include "core/thread_pool.h"

namespace walferry::compress {
namespace {

struct Job {
  std::uint64_t index = 0;
  std::uint64_t raw_offset = 0;
  PooledBuffer raw;
  PooledBuffer out;
  std::size_t out_len = 0;
  std::uint64_t xxh = 0;
  Status status;
  bool done = false;  // guarded by the pipeline mutex
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
  const std::size_t chunk_size = options.chunk_size;
  BufferPool raw_pool(chunk_size, in_flight);
  BufferPool out_pool(codecs[0]->Bound(chunk_size), in_flight);
  std::vector<Job> slots(in_flight);

  // Reading: whichever worker is free reads the next chunk under read_mu, so
  // no thread hop sits between reading and compressing.
  std::mutex read_mu;
  std::uint64_t next_index = 0;  // guarded by read_mu
  std::uint64_t raw_offset = 0;  // guarded by read_mu
  bool source_done = false;      // guarded by read_mu

  // Everything below is guarded by mu.
  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_use = 0;    // chunks between "slot taken" and "emitted"
  bool abort = false;        // stop reading and compressing
  bool eof = false;          // the source is exhausted; `total` chunks exist
  std::uint64_t total = 0;
  Status read_status;
  double busy_seconds = 0, idle_seconds = 0;

  // Resume: read and drop the first chunks without compressing them.
  if (options.skip_chunks > 0) {
    PooledBuffer scratch = raw_pool.Acquire();
    while (next_index < options.skip_chunks) {
      WF_ASSIGN(std::size_t n, ReadFully(src, scratch.whole()));
      raw_offset += n;
      if (n == 0) {
        source_done = true;
        break;
      }
      ++next_index;
      if (n < chunk_size) {
        source_done = true;
        break;
      }
    }
    if (source_done) {
      eof = true;
      total = next_index;
    }
  }
  const std::uint64_t first_index = next_index;

  auto worker = [&](Codec* codec) {
    using Clock = std::chrono::steady_clock;
    Clock::duration busy{}, idle{};
    while (true) {
      auto t0 = Clock::now();
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return abort || eof || in_use < in_flight; });
        if (abort || eof) break;
        ++in_use;
      }
      PooledBuffer raw = raw_pool.Acquire();  // never blocks: in_use <= in_flight
      std::uint64_t index = 0, offset = 0;
      std::size_t n = 0;
      Clock::time_point t1;
      {
        std::unique_lock rlk(read_mu);
        t1 = Clock::now();
        idle += t1 - t0;
        Status error;
        if (!source_done) {
          auto r = ReadFully(src, raw.whole());
          if (r.ok()) {
            n = *r;
            if (n < chunk_size) source_done = true;
          } else {
            error = r.error();
            source_done = true;
          }
        }
        if (n > 0) {
          index = next_index++;
          offset = raw_offset;
          raw_offset += n;
        }
        if (source_done || !error.ok()) {
          std::lock_guard lk(mu);
          if (!error.ok()) {
            read_status = error;
            abort = true;
          }
          eof = true;
          total = next_index;
          if (n == 0) --in_use;
          cv.notify_all();
        }
      }
      if (n == 0) break;
      raw.set_size(n);
      Job& job = slots[index % in_flight];
      job.index = index;
      job.raw_offset = offset;
      job.raw = std::move(raw);
      job.out = out_pool.Acquire();  // never blocks either
      job.xxh = Xxh3_64(job.raw.bytes());
      auto r = codec->Compress(job.raw.bytes(), job.out.whole());
      if (r.ok()) {
        job.out_len = *r;
        job.status = Status::Ok();
      } else {
        job.status = r.error();
      }
      busy += Clock::now() - t1;
      std::lock_guard lk(mu);
      job.done = true;
      cv.notify_all();
    }
    std::lock_guard lk(mu);
    busy_seconds += std::chrono::duration<double>(busy).count();
    idle_seconds += std::chrono::duration<double>(idle).count();
  };

  Status result;
  std::uint64_t next_emit = first_index;
  {
    std::vector<std::thread> workers;
    // Joined on every path out of this block, after telling the workers to stop.
    struct Joiner {
      std::vector<std::thread>& threads;
      std::mutex& mu;
      std::condition_variable& cv;
      bool& abort;
      ~Joiner() {
        {
          std::lock_guard lk(mu);
          abort = true;
          cv.notify_all();
        }
        for (auto& t : threads) t.join();
      }
    } joiner{workers, mu, cv, abort};
    for (auto& c : codecs) workers.emplace_back(worker, c.get());

    while (true) {
      Job& job = slots[next_emit % in_flight];
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] {
          return !read_status.ok() || (job.done && job.index == next_emit) ||
                 (eof && next_emit >= total);
        });
        if (!read_status.ok()) {
          result = read_status;
          break;
        }
        if (!(job.done && job.index == next_emit)) break;  // all emitted
      }
      if (!job.status.ok()) {
        result = job.status;
        break;
      }
      Chunk chunk;
      chunk.index = job.index;
      chunk.raw_offset = job.raw_offset;
      chunk.raw_len = static_cast<std::uint32_t>(job.raw.size());
      chunk.raw_xxh3 = job.xxh;
      chunk.raw = job.raw.bytes();
      chunk.payload = std::span<const std::byte>(job.out.data(), job.out_len);
      result = emit(chunk);
      if (!result.ok()) break;
      job.raw = PooledBuffer();
      job.out = PooledBuffer();
      std::lock_guard lk(mu);
      job.done = false;
      --in_use;
      ++next_emit;
      cv.notify_all();
    }
  }  // workers stopped and joined

  if (stats) {
    stats->chunks = next_emit - first_index;
    stats->raw_bytes = raw_offset;
    stats->buffers_allocated = raw_pool.allocated();
    stats->in_flight = in_flight;
    stats->worker_busy_seconds = busy_seconds;
    stats->worker_idle_seconds = idle_seconds;
  }
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
