// Internal helpers shared by the compress and decompress pipelines.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <thread>
#include <vector>

#include "core/bounded_queue.h"
#include "core/result.h"
#include "core/stream.h"

namespace walferry::compress {

// Reads until `buf` is full or the source reports EOF (tolerates short reads).
Result<std::size_t> ReadFully(ByteSource& src, std::span<std::byte> buf);

// 0 -> number of cores.
std::size_t ResolveThreads(std::size_t threads);

// Worker threads fed by one queue; the destructor closes the queue, lets the
// workers drain it, and joins them.
template <typename T>
class WorkerGroup {
 public:
  explicit WorkerGroup(BoundedQueue<T>& queue) : queue_(queue) {}
  ~WorkerGroup() {
    queue_.Close();
    for (auto& t : threads_) t.join();
  }
  WorkerGroup(const WorkerGroup&) = delete;
  WorkerGroup& operator=(const WorkerGroup&) = delete;
  void Start(std::function<void()> body) { threads_.emplace_back(std::move(body)); }

 private:
  BoundedQueue<T>& queue_;
  std::vector<std::thread> threads_;
};

}  // namespace walferry::compress
