// The parallel decompressor. Tasks on a ThreadPool read the input through a
// bounded window, one at a time, and cut it into frames/members; those whose
// sizes are known up front (zstd frames with a content size; gzip members with
// walferry's size field) the task decodes itself; the calling thread writes
// results in order. Anything else (stock gzip/pigz members, streamed zstd
// frames, huge frames) is decoded in order on the calling thread by zlib /
// ZSTD_decompressStream.
#define ZSTD_STATIC_LINKING_ONLY  // ZSTD_getFrameHeader, ZSTD_frameHeader
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "compress/codec.h"
#include "compress/gzip_member.h"
#include "compress/input_window_internal.h"
#include "compress/pipeline_internal.h"
#include "compress/zstd_internal.h"
#include "core/thread_pool.h"

namespace walferry::compress {
namespace {

using internal::Buffer;
using internal::InputWindow;
using internal::kWindowSize;

// Frames/members larger than this (raw) are decoded by streaming, so a crafted
// header cannot make each in-flight slot allocate a huge buffer.
constexpr std::size_t kMaxParallelRaw = std::size_t{16} << 20;
constexpr std::size_t kStreamOutSize = std::size_t{1} << 20;
constexpr std::size_t kMaxGzipHeader = std::size_t{1} << 20;
constexpr std::uint32_t kZstdMagic = 0xFD2FB528u;
constexpr int kMaxWindowLog = 27;

bool IsSkippableMagic(std::uint32_t m) { return (m & 0xFFFFFFF0u) == 0x184D2A50u; }

// What the task of one index found, and for a frame what it decoded. The
// task writes every field it uses, then Sets done; the calling thread reads
// them after done and Resets it before the slot's next task.
struct Slot {
  enum Kind {
    kFrame,   // a frame decoded into out (or status says why not)
    kStream,  // a frame to stream: left in the window, the input paused
    kVoid,    // nothing: the input was paused for an earlier kStream
    kEnd,     // the input ended here (status: why, if it ended early)
  } kind = kEnd;
  Buffer in, out;
  std::size_t in_len = 0, out_len = 0;
  std::uint64_t offset = 0;  // input offset of the frame, for messages
  Status status;
  DoneFlag done;
};

// What the next bytes of the input hold.
struct Parsed {
  enum Kind { kEnd, kSkipped, kParallel, kStream } kind = kEnd;
  std::size_t in_len = 0, out_len = 0;
};

// The calling thread keeps one task queued per free slot on a ThreadPool (one
// Decoder per worker) and writes finished slots in order. A task takes the
// input lock, takes the next index, cuts the next frame/member, copies it
// into the slot of its index, releases the lock and decodes: no thread hop
// between cutting and decoding. A frame that must be streamed pauses the
// input; the calling thread decodes it, holding the input lock, once every
// earlier slot is written, straight to the sink. So `sink` is written only by
// the calling thread, and `src` read by one thread at a time.
class Decompressor {
 public:
  Decompressor(ByteSource& src, ByteSink& sink, std::size_t threads)
      : src_(src), sink_(sink), threads_(ResolveThreads(threads)), in_flight_(threads_ + 2),
        window_(src), slots_(in_flight_) {}

  ~Decompressor() {
    if (zlib_ready_) inflateEnd(&zs_);
  }

  Status Run() {
    WF_TRY(DetectInput());
    std::vector<std::unique_ptr<Decoder>> decoders;
    for (std::size_t i = 0; i < threads_; ++i) {
      WF_ASSIGN(auto d, MakeDecoder(algorithm_));
      decoders.push_back(std::move(d));
    }
    Status result;
    {
      // After `decoders` and slots_: drained and joined before them, on every path.
      ThreadPool pool(threads_, in_flight_);
      result = Loop(pool, decoders);
      if (!result.ok()) stop_.store(true, std::memory_order_relaxed);
    }
    if (!result.ok()) return result;
    return sink_.Finish();
  }

 private:
  // Sets algorithm_ from the first bytes, or says why the input is neither.
  Status DetectInput() {
    WF_TRY(window_.Ensure(4));
    if (window_.size() == 0) {
      return Error(ErrorCode::kInvalidArgument, src_.name() + ": empty input, not a zstd or gzip stream");
    }
    auto algo = DetectAlgorithm(window_.avail());
    if (algo.ok()) {
      algorithm_ = *algo;
      return Status::Ok();
    }
    // A few bytes of a magic number and then the end: a truncated file.
    auto head = window_.avail();
    if (head.size() < 4 && window_.eof()) {
      for (auto [magic, a] : {std::pair{"\x28\xb5\x2f\xfd", Algorithm::kZstd},
                              std::pair{"\x1f\x8b\x08", Algorithm::kGzip}}) {
        if (head.size() <= std::strlen(magic) && std::memcmp(head.data(), magic, head.size()) == 0) {
          algorithm_ = a;
          return Truncated();
        }
      }
    }
    return algo.error().Wrap(src_.name());
  }

  Slot& SlotOf(std::uint64_t index) { return slots_[index % in_flight_]; }

  // Writes the slots in index order; errors come in stream order (a bad
  // frame is reported after every frame before it has been written).
  Status Loop(ThreadPool& pool, const std::vector<std::unique_ptr<Decoder>>& decoders) {
    while (true) {
      while (submitted_ - next_emit_ < in_flight_) {
        SlotOf(submitted_++).done.Reset();
        pool.Submit([this, &decoders](std::size_t worker) { CutAndDecode(*decoders[worker]); });
      }
      Slot& s = SlotOf(next_emit_);
      s.done.Wait();
      switch (s.kind) {
        case Slot::kEnd:
          return s.status;  // every later slot is an end too
        case Slot::kVoid:
          break;
        case Slot::kStream:
          WF_TRY(StreamPaused());
          break;
        case Slot::kFrame:
          if (!s.status.ok()) {
            return Error(ErrorCode::kCorrupt, src_.name() + ": " + s.status.error().message() +
                                                  " (at byte " + std::to_string(s.offset) + ")");
          }
          WF_TRY(sink_.Write({s.out.data(), s.out_len}));
          break;
      }
      ++next_emit_;
    }
  }

  // The calling thread, every earlier slot written: decodes the frame that
  // paused the input, then resumes it. Its errors name the frame already.
  Status StreamPaused() {
    std::lock_guard lk(in_mu_);
    Status st = StreamFrame();
    if (!st.ok()) input_done_ = true;
    paused_ = false;
    return st;
  }

  // On a pool worker: fills the slot of the next index.
  void CutAndDecode(Decoder& decoder) {
    std::unique_lock lk(in_mu_);
    Slot& s = SlotOf(next_index_++);
    s.status = Status::Ok();
    s.kind = input_done_ || stop_.load(std::memory_order_relaxed) ? Slot::kEnd
             : paused_                                           ? Slot::kVoid
                                                                 : Cut(s);
    lk.unlock();
    if (s.kind == Slot::kFrame) {
      s.status = decoder.DecompressChunk({s.in.data(), s.in_len}, {s.out.data(), s.out_len});
    }
    s.done.Set();
  }

  // With in_mu_ held: parses the next frame/member into `s` (kFrame), or
  // pauses the input at a frame to stream, or ends it (at a parse error too).
  Slot::Kind Cut(Slot& s) {
    Result<Parsed> p = Parsed{};
    do {
      p = ParseNext();
    } while (p.ok() && p->kind == Parsed::kSkipped);
    if (!p.ok() || p->kind == Parsed::kEnd) {
      input_done_ = true;
      if (!p.ok()) s.status = p.error();
      return Slot::kEnd;
    }
    ++frames_;
    s.offset = window_.offset();
    if (p->kind == Parsed::kStream) {
      paused_ = true;
      return Slot::kStream;
    }
    s.in.Reserve(p->in_len);
    s.out.Reserve(p->out_len);
    std::memcpy(s.in.data(), window_.avail().data(), p->in_len);
    s.in_len = p->in_len;
    s.out_len = p->out_len;
    window_.Consume(p->in_len);
    return Slot::kFrame;
  }

  Error Corrupt(std::uint64_t offset, const std::string& what) const {
    return Error(ErrorCode::kCorrupt, src_.name() + ": " + what + " at byte " + std::to_string(offset));
  }
  Error Truncated() const {
    return Error(ErrorCode::kCorrupt, src_.name() + ": truncated input (ends inside a " +
                                          std::string(AlgorithmName(algorithm_)) + " " +
                                          (algorithm_ == Algorithm::kZstd ? "frame" : "member") + ")");
  }

  // What comes next in the input. kParallel leaves the frame
  // in the window for the caller to copy and consume.
  Result<Parsed> ParseNext() {
    WF_TRY(window_.Ensure(4));
    if (window_.size() == 0) return Parsed{};  // clean end between frames
    return algorithm_ == Algorithm::kZstd ? NextZstdFrame() : NextGzipMember();
  }

  Status StreamFrame() {
    return algorithm_ == Algorithm::kZstd ? StreamZstdFrame() : StreamGzipMember();
  }

  // ---- zstd ----

  Result<Parsed> NextZstdFrame() {
    const std::uint64_t at = window_.offset();
    WF_TRY(window_.Ensure(ZSTD_FRAMEHEADERSIZE_MAX));
    auto head = window_.avail();
    std::uint32_t magic = head.size() >= 4 ? LoadLe<std::uint32_t>(head.data()) : 0;
    if (magic != kZstdMagic && !IsSkippableMagic(magic)) {
      if (head.size() < 4 && window_.eof() && frames_ > 0 &&
          std::memcmp(head.data(), "\x28\xb5\x2f\xfd", head.size()) == 0) {
        return Truncated();
      }
      return Corrupt(at, frames_ ? "trailing garbage after the last zstd frame" : "not a zstd frame");
    }
    ZSTD_frameHeader fh;
    std::size_t r = ZSTD_getFrameHeader(&fh, head.data(), head.size());
    if (ZSTD_isError(r)) return Corrupt(at, internal::ZstdError(r, "bad zstd frame header").message());
    if (r > 0) return Truncated();  // needs more bytes, and Ensure saw the end
    if (fh.frameType == ZSTD_skippableFrame) {
      std::uint64_t left = std::uint64_t{fh.headerSize} + fh.frameContentSize;
      while (left > 0) {
        WF_TRY(window_.Ensure(1));
        if (window_.size() == 0) return Truncated();
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, window_.size()));
        window_.Consume(n);
        left -= n;
      }
      return Parsed{Parsed::kSkipped};
    }
    if (fh.frameContentSize != ZSTD_CONTENTSIZE_UNKNOWN && fh.frameContentSize <= kMaxParallelRaw) {
      const std::size_t content = static_cast<std::size_t>(fh.frameContentSize);
      // Upper bound on a sane frame's size; past it, stream instead.
      const std::size_t limit = ZSTD_compressBound(content) + 2 * ZSTD_FRAMEHEADERSIZE_MAX + 64 +
                                3 * (content / 1024 + 1);
      std::size_t want = std::min(limit, std::max<std::size_t>(window_.size(), 64 << 10));
      while (true) {
        WF_TRY(window_.Ensure(want));
        std::size_t fsize = ZSTD_findFrameCompressedSize(window_.avail().data(), window_.size());
        if (!ZSTD_isError(fsize)) return Parsed{Parsed::kParallel, fsize, content};
        if (ZSTD_getErrorCode(fsize) != ZSTD_error_srcSize_wrong) {
          return Corrupt(at, internal::ZstdError(fsize, "corrupt zstd frame").message());
        }
        if (window_.eof()) return Truncated();
        if (want >= limit) break;  // oddly large frame: decode it as a stream
        want = std::min(limit, want * 2);
      }
    }
    return Parsed{Parsed::kStream};
  }

  Status StreamZstdFrame() {
    const std::uint64_t at = window_.offset();
    if (!zstream_) {
      zstream_.reset(ZSTD_createDStream());
      if (!zstream_) return Error(ErrorCode::kInternal, "zstd: cannot allocate a stream");
      // The window a frame header may ask for is bounded (128 MiB, zstd's own
      // default, what `zstd --ultra -22` writes); a larger one is kCorrupt.
      ZSTD_DCtx_setParameter(zstream_.get(), ZSTD_d_windowLogMax, kMaxWindowLog);
    }
    ZSTD_DCtx_reset(zstream_.get(), ZSTD_reset_session_only);
    stream_out_.Reserve(kStreamOutSize);
    while (true) {
      if (window_.size() == 0) {
        WF_TRY(window_.ReadMore());
        if (window_.size() == 0) return Truncated();
      }
      ZSTD_inBuffer in{window_.avail().data(), window_.size(), 0};
      ZSTD_outBuffer out{stream_out_.data(), stream_out_.capacity(), 0};
      std::size_t r = ZSTD_decompressStream(zstream_.get(), &out, &in);
      if (ZSTD_isError(r)) return Corrupt(at, internal::ZstdError(r, "corrupt zstd frame").message());
      window_.Consume(in.pos);
      if (out.pos) WF_TRY(sink_.Write({stream_out_.data(), out.pos}));
      if (r == 0) return Status::Ok();  // frame complete, checksum verified
    }
  }

  // ---- gzip ----

  Result<Parsed> NextGzipMember() {
    const std::uint64_t at = window_.offset();
    gzip::HeaderInfo info;
    std::size_t want = 32;
    while (true) {
      WF_TRY(window_.Ensure(want));
      auto st = gzip::ParseHeader(window_.avail(), &info);
      if (st == gzip::ParseState::kOk) break;
      if (st == gzip::ParseState::kBad) {
        return Corrupt(at, frames_ ? "trailing garbage after the last gzip member" : "not a gzip member");
      }
      if (window_.eof()) return Truncated();
      if (want >= kMaxGzipHeader) return Corrupt(at, "gzip header too long");
      want *= 2;
    }
    if (info.member_size && *info.raw_size <= kMaxParallelRaw) {
      const std::size_t member = *info.member_size;
      // Bound the recorded size by what deflate can make of the recorded raw
      // size before reading that far: a crafted field must not reserve 4 GiB.
      const std::size_t most = info.header_size + MaxCompressedSize(*info.raw_size) + gzip::kTrailerSize;
      if (member > most) {
        return Corrupt(at, "corrupt gzip member: it records " + std::to_string(member) + " bytes for " +
                               std::to_string(*info.raw_size) + " raw bytes (at most " + std::to_string(most) +
                               " possible)");
      }
      WF_TRY(window_.Ensure(member));
      if (window_.size() < member) return Truncated();
      return Parsed{Parsed::kParallel, member, *info.raw_size};
    }
    return Parsed{Parsed::kStream};
  }

  Status StreamGzipMember() {
    const std::uint64_t at = window_.offset();
    if (!zlib_ready_) {
      std::memset(&zs_, 0, sizeof zs_);
      if (inflateInit2(&zs_, 16 + 15) != Z_OK) {
        return Error(ErrorCode::kInternal, "zlib: cannot initialize inflate");
      }
      zlib_ready_ = true;
    } else {
      inflateReset(&zs_);
    }
    stream_out_.Reserve(kStreamOutSize);
    while (true) {
      if (window_.size() == 0) {
        WF_TRY(window_.ReadMore());
        if (window_.size() == 0) return Truncated();
      }
      const std::size_t in_size = std::min<std::size_t>(window_.size(), 1u << 30);
      zs_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(window_.avail().data()));
      zs_.avail_in = static_cast<uInt>(in_size);
      zs_.next_out = reinterpret_cast<Bytef*>(stream_out_.data());
      zs_.avail_out = static_cast<uInt>(stream_out_.capacity());
      int r = inflate(&zs_, Z_NO_FLUSH);
      const std::size_t used = in_size - zs_.avail_in;
      const std::size_t made = stream_out_.capacity() - zs_.avail_out;
      window_.Consume(used);
      if (made) WF_TRY(sink_.Write({stream_out_.data(), made}));
      if (r == Z_STREAM_END) return Status::Ok();  // CRC32 and ISIZE verified by zlib
      if (r == Z_DATA_ERROR || r == Z_NEED_DICT) {
        return Corrupt(at, std::string("corrupt gzip member: ") + (zs_.msg ? zs_.msg : "bad data"));
      }
      if (r == Z_MEM_ERROR) return Error(ErrorCode::kInternal, "zlib: out of memory");
      if (r == Z_BUF_ERROR && used == 0 && made == 0) {
        // No progress: needs more input.
        if (window_.eof()) return Truncated();
        WF_TRY(window_.ReadMore());
        if (window_.eof() && window_.size() == 0) return Truncated();
      }
    }
  }

  ByteSource& src_;
  ByteSink& sink_;
  const std::size_t threads_;
  const std::size_t in_flight_;
  Algorithm algorithm_ = Algorithm::kRaw;

  // The input, guarded by in_mu_ once Loop has started (DetectInput runs before).
  std::mutex in_mu_;
  InputWindow window_;
  bool input_done_ = false;
  bool paused_ = false;  // a kStream slot waits for the calling thread
  std::uint64_t next_index_ = 0;  // index of the next task to cut
  std::uint64_t frames_ = 0;
  Buffer stream_out_;
  internal::ZstdDCtxPtr zstream_;  // a ZSTD_DStream is a ZSTD_DCtx
  z_stream zs_{};
  bool zlib_ready_ = false;

  std::vector<Slot> slots_;
  std::atomic<bool> stop_{false};
  // The calling thread's.
  std::uint64_t submitted_ = 0;  // index one past the last submitted task
  std::uint64_t next_emit_ = 0;  // next slot to write
};

}  // namespace

Status DecompressStream(ByteSource& src, ByteSink& sink, std::size_t threads) {
  Decompressor d(src, sink, threads);
  return d.Run();
}

// Mirrors the Decompressor above: keep the two together.
std::uint64_t DecodeMemory(std::span<const std::byte> head, std::uint64_t stream_size, std::size_t threads) {
  constexpr std::uint64_t kRound = 0x10000;   // Buffer::Reserve rounds up to 64 KiB
  constexpr std::uint64_t kDecoder = 256 << 10;  // a ZSTD_DCtx or libdeflate decompressor, generously
  auto up = [](std::uint64_t n) { return (n + kRound - 1) & ~(kRound - 1); };
  const std::uint64_t n_threads = ResolveThreads(threads);
  const std::uint64_t decoders = n_threads * kDecoder;
  // A frame that is decoded by streaming: the input window, the output
  // buffer, and the stream's own window and block buffers.
  const std::uint64_t stream_base = kWindowSize + kStreamOutSize + decoders + (256u << 10);
  std::uint64_t in = 0, out = 0;  // the first frame: compressed and raw size
  if (head.size() >= 4 && LoadLe<std::uint32_t>(head.data()) == kZstdMagic) {
    ZSTD_frameHeader fh;
    if (ZSTD_isError(ZSTD_getFrameHeader(&fh, head.data(), head.size())) || fh.frameType != ZSTD_frame) {
      return stream_base;
    }
    if (fh.frameContentSize == ZSTD_CONTENTSIZE_UNKNOWN || fh.frameContentSize > kMaxParallelRaw) {
      return stream_base + std::min<std::uint64_t>(fh.windowSize, std::uint64_t{1} << kMaxWindowLog);
    }
    out = fh.frameContentSize;
    in = ZSTD_compressBound(static_cast<std::size_t>(out)) + 2 * ZSTD_FRAMEHEADERSIZE_MAX + 64 + 3 * (out / 1024 + 1);
  } else {
    gzip::HeaderInfo info;
    if (gzip::ParseHeader(head, &info) != gzip::ParseState::kOk || !info.member_size || !info.raw_size ||
        *info.raw_size > kMaxParallelRaw) {
      return stream_base + (64u << 10);  // zlib's 32 KiB window and state
    }
    out = *info.raw_size;
    in = *info.member_size;
  }
  // threads + 2 slots, each with a frame's raw output; their inputs are
  // distinct frames, so together no more than the stream (and its rounding).
  const std::uint64_t slots = n_threads + 2;
  const std::uint64_t inputs = std::min(slots * up(in), up(stream_size) + slots * kRound);
  // The input window grows by doubling to hold a whole frame.
  const std::uint64_t window = std::max<std::uint64_t>(kWindowSize, 2 * up(std::min(in, stream_size)));
  return slots * up(out) + inputs + window + decoders;
}

}  // namespace walferry::compress
