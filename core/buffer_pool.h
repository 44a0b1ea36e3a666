// A pool of equally sized byte buffers, allocated on first use and recycled
// forever after (fresh pages cost ~4 ms/MiB on these machines; reused memory is
// ~60x faster). Acquire blocks when `max_buffers` are out, which is what bounds
// the memory of a pipeline. Thread-safe; buffers return to the pool when the
// PooledBuffer handle is destroyed. The pool must outlive its handles.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace walferry {

class BufferPool;

class PooledBuffer {
 public:
  PooledBuffer() = default;
  PooledBuffer(PooledBuffer&& o) noexcept : pool_(o.pool_), data_(std::move(o.data_)), size_(o.size_) {
    o.pool_ = nullptr;
    o.size_ = 0;
  }
  PooledBuffer& operator=(PooledBuffer&& o) noexcept;
  ~PooledBuffer();

  std::byte* data() { return data_.get(); }
  const std::byte* data() const { return data_.get(); }
  std::size_t capacity() const;
  // Bytes in use, set by whoever fills the buffer.
  std::size_t size() const { return size_; }
  void set_size(std::size_t n) { size_ = n; }
  std::span<std::byte> whole() { return {data_.get(), capacity()}; }
  std::span<const std::byte> bytes() const { return {data_.get(), size_}; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  friend class BufferPool;
  PooledBuffer(BufferPool* pool, std::unique_ptr<std::byte[]> data)
      : pool_(pool), data_(std::move(data)) {}
  BufferPool* pool_ = nullptr;
  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
};

class BufferPool {
 public:
  BufferPool(std::size_t buffer_size, std::size_t max_buffers)
      : buffer_size_(buffer_size), max_buffers_(max_buffers ? max_buffers : 1) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Blocks until a buffer is free (or can be allocated within max_buffers).
  PooledBuffer Acquire();
  std::size_t buffer_size() const { return buffer_size_; }
  std::size_t allocated() const;

 private:
  friend class PooledBuffer;
  void Release(std::unique_ptr<std::byte[]> data);

  const std::size_t buffer_size_;
  const std::size_t max_buffers_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<std::byte[]>> free_;
  std::size_t allocated_ = 0;
};

}  // namespace walferry
