#include "transport/buffer_budget.h"

#include <algorithm>
#include <string>

#include "compress/codec.h"
#include "transport/wire.h"

namespace walferry::transport {

namespace {
std::string Mib(std::uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20) + " MiB"; }
}  // namespace

Status BufferBudget::Acquire(std::uint64_t bytes, std::chrono::steady_clock::time_point deadline,
                             const std::function<bool()>& reclaim, const std::function<bool()>& give_up) {
  if (bytes == 0) return Status::Ok();
  if (bytes > capacity_) {
    return Error(ErrorCode::kRefused, "a frame needs " + Mib(bytes) + " of buffer, more than the receiver's whole budget (serve --max-buffer-mb " +
                                          std::to_string(capacity_ >> 20) + "); send with a smaller --chunk-kib");
  }
  // A short tick: memory put back into the spare pool does not notify.
  constexpr auto kTick = std::chrono::milliseconds(50);
  std::unique_lock lk(mu_);
  ++waiters_;
  for (;;) {
    if (used_ + bytes <= capacity_) {
      used_ += bytes;
      peak_ = std::max(peak_, used_);
      --waiters_;
      return Status::Ok();
    }
    lk.unlock();
    bool freed = reclaim && reclaim();
    bool stop = give_up && give_up();
    lk.lock();
    if (freed) continue;
    auto now = std::chrono::steady_clock::now();
    if (stop || now >= deadline) {
      --waiters_;
      return Error(ErrorCode::kNetwork, "receiver busy: no buffer memory for " + Mib(bytes) + " (serve --max-buffer-mb " +
                                            std::to_string(capacity_ >> 20) + " in use by other connections); try again");
    }
    cv_.wait_until(lk, std::min(deadline, now + kTick), [&] { return used_ + bytes <= capacity_; });
  }
}

void BufferBudget::Release(std::uint64_t bytes) {
  if (bytes == 0) return;
  {
    std::lock_guard lk(mu_);
    used_ -= std::min(used_, bytes);
  }
  cv_.notify_all();
}

std::uint64_t BufferBudget::used() const {
  std::lock_guard lk(mu_);
  return used_;
}

std::uint64_t BufferBudget::peak() const {
  std::lock_guard lk(mu_);
  return peak_;
}

std::size_t BufferBudget::waiters() const {
  std::lock_guard lk(mu_);
  return waiters_;
}

std::uint64_t FrameBufferNeed(std::uint32_t body_len, std::uint32_t chunk_size, bool recompress) {
  std::uint64_t n = kHeaderSize + std::uint64_t{body_len} + chunk_size;
  if (recompress && chunk_size > 0) n += compress::MaxCompressedSize(chunk_size) + kRecompressContext;
  return n;
}

std::uint64_t DefaultBufferBudget(std::size_t max_connections) {
  constexpr std::uint32_t kDefaultChunk = 1u << 20;
  const std::uint64_t per_default =
      FrameBufferNeed(static_cast<std::uint32_t>(kChunkFixedSize + compress::MaxCompressedSize(kDefaultChunk)), kDefaultChunk,
                      true);
  const std::uint64_t per_largest = FrameBufferNeed(kMaxFrameBody, kMaxChunkRaw, true);
  std::uint64_t b = std::max<std::uint64_t>(max_connections * per_default, 4 * per_largest);
  return (b + (1u << 20) - 1) & ~std::uint64_t{(1u << 20) - 1};  // whole MiB
}

}  // namespace walferry::transport
