// The parallel chunk compressor. The calling thread reads raw chunks into
// pooled buffers and emits finished chunks in index order; N worker threads,
// each owning one Codec, compress. At most `in_flight` chunks exist between
// read and emit, so memory is bounded whatever the stream length.
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "compress/codec.h"
#include "compress/pipeline_internal.h"
#include "core/bounded_queue.h"
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
  std::mutex mu;
  std::condition_variable done_cv;
  BoundedQueue<Job*> work(in_flight);

  std::uint64_t next_index = 0;  // next chunk to read
  std::uint64_t next_emit = 0;   // next chunk to emit
  std::uint64_t raw_offset = 0;
  bool eof = false;
  Status result;

  {
    WorkerGroup workers(work);  // joined before slots and pools go away
    for (std::size_t i = 0; i < threads; ++i) {
      Codec* codec = codecs[i].get();
      workers.Start([&, codec] {
        while (auto item = work.Pop()) {
          Job* job = *item;
          job->xxh = Xxh3_64(job->raw.bytes());
          auto r = codec->Compress(job->raw.bytes(), job->out.whole());
          if (r.ok()) {
            job->out_len = *r;
          } else {
            job->status = r.error();
          }
          std::lock_guard lk(mu);
          job->done = true;
          done_cv.notify_all();
        }
      });
    }

    // Resume: read and drop the first chunks without compressing them.
    if (options.skip_chunks > 0) {
      PooledBuffer scratch = raw_pool.Acquire();
      while (next_index < options.skip_chunks) {
        auto n = ReadFully(src, scratch.whole());
        if (!n.ok()) return n.error();
        raw_offset += *n;
        if (*n == 0) {
          eof = true;
          break;
        }
        ++next_index;
        if (*n < chunk_size) {
          eof = true;
          break;
        }
      }
      next_emit = next_index;
    }

    while (result.ok()) {
      if (next_emit < next_index) {
        Job& job = slots[next_emit % in_flight];
        std::unique_lock lk(mu);
        // Emit whenever the oldest chunk is ready, or when nothing else can be done.
        if (job.done || eof || next_index - next_emit >= in_flight) {
          done_cv.wait(lk, [&] { return job.done; });
          lk.unlock();
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
          job.raw = PooledBuffer();
          job.out = PooledBuffer();
          ++next_emit;
          continue;
        }
      } else if (eof) {
        break;
      }
      // Read the next chunk; a buffer is always free here.
      PooledBuffer raw = raw_pool.Acquire();
      auto n = ReadFully(src, raw.whole());
      if (!n.ok()) {
        result = n.error();
        break;
      }
      if (*n < chunk_size) eof = true;
      if (*n == 0) continue;
      raw.set_size(*n);
      Job& job = slots[next_index % in_flight];
      job.index = next_index;
      job.raw_offset = raw_offset;
      job.raw = std::move(raw);
      job.out = out_pool.Acquire();
      job.out_len = 0;
      job.status = Status::Ok();
      {
        std::lock_guard lk(mu);
        job.done = false;
      }
      raw_offset += *n;
      ++next_index;
      work.Push(&job);
    }
  }  // workers drain the queue and join

  if (stats) {
    stats->chunks = next_emit - std::min(next_emit, options.skip_chunks);
    stats->raw_bytes = raw_offset;
    stats->buffers_allocated = raw_pool.allocated();
    stats->in_flight = in_flight;
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
