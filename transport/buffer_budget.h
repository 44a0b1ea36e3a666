// One memory budget shared by every connection of a receiver (`walferry serve
// --max-buffer-mb`): a connection admits a frame body against it before the
// body is allocated, and gives its share back when its buffers are freed
// (docs/receiver-limits.md, "Memory").
//
// Acquire is all-or-nothing (a connection never holds part of what it waits
// for, so waiters cannot deadlock each other) and bounded in time; a request
// larger than the whole budget is refused at once.
//
// Thread-safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>

#include "core/result.h"

namespace walferry::transport {

class BufferBudget {
 public:
  explicit BufferBudget(std::uint64_t capacity) : capacity_(capacity) {}

  // Takes `bytes` of the budget, waiting until `deadline` for others to give
  // theirs back. While it waits, `reclaim` is called (without any lock held)
  // to free memory nobody uses (spare buffers); it returns true when it freed
  // some. `give_up` ends the wait early (the server stops).
  //   kRefused: `bytes` exceeds the whole budget (waiting cannot help);
  //   kNetwork: the budget stayed full until the deadline (retryable).
  Status Acquire(std::uint64_t bytes, std::chrono::steady_clock::time_point deadline,
                 const std::function<bool()>& reclaim, const std::function<bool()>& give_up);
  void Release(std::uint64_t bytes);

  std::uint64_t capacity() const { return capacity_; }
  std::uint64_t used() const;
  std::uint64_t peak() const;
  // Connections waiting in Acquire now (memory returned then is better freed than kept).
  std::size_t waiters() const;

 private:
  const std::uint64_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t used_ = 0;
  std::uint64_t peak_ = 0;
  std::size_t waiters_ = 0;
};

// The budget a receiver gets without --max-buffer-mb: every allowed connection
// at the sender's default chunk size (1 MiB), and never less than four
// connections at the largest chunk (16 MiB), so that any chunk size works
// (both into a compressing store).
std::uint64_t DefaultBufferBudget(std::size_t max_connections);

// Bytes one connection needs to receive a frame with this body while its
// transfer's chunks are `chunk_size` raw bytes (0 outside a transfer): the
// frame itself and, for a CHUNK, the decompressed chunk and, when the store
// compresses (`recompress`), the store's compressor (its context and output
// buffer: a chunk that came raw is compressed again before it is written).
std::uint64_t FrameBufferNeed(std::uint32_t body_len, std::uint32_t chunk_size, bool recompress);
// What a store compressor's context takes besides its output buffer (zstd
// level 3: 1.3 MiB by ZSTD_estimateCCtxSize; libdeflate level 6: less).
inline constexpr std::uint64_t kRecompressContext = 2u << 20;

}  // namespace walferry::transport
