#include "core/buffer_pool.h"

namespace walferry {

PooledBuffer& PooledBuffer::operator=(PooledBuffer&& o) noexcept {
  if (this != &o) {
    if (pool_ && data_) pool_->Release(std::move(data_));
    pool_ = o.pool_;
    data_ = std::move(o.data_);
    size_ = o.size_;
    o.pool_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

PooledBuffer::~PooledBuffer() {
  if (pool_ && data_) pool_->Release(std::move(data_));
}

std::size_t PooledBuffer::capacity() const { return pool_ ? pool_->buffer_size() : 0; }

PooledBuffer BufferPool::Acquire() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !free_.empty() || allocated_ < max_buffers_; });
  if (!free_.empty()) {
    auto d = std::move(free_.back());
    free_.pop_back();
    return PooledBuffer(this, std::move(d));
  }
  ++allocated_;
  lk.unlock();
  // for_overwrite: no zero-fill, the first real write touches the pages.
  return PooledBuffer(this, std::make_unique_for_overwrite<std::byte[]>(buffer_size_));
}

std::size_t BufferPool::allocated() const {
  std::lock_guard lk(mu_);
  return allocated_;
}

void BufferPool::Release(std::unique_ptr<std::byte[]> data) {
  std::lock_guard lk(mu_);
  free_.push_back(std::move(data));
  cv_.notify_one();
}

}  // namespace walferry
