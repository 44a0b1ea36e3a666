// Fixed set of worker threads running submitted tasks in FIFO order.
// Submit is thread-safe. The destructor finishes queued tasks, then joins.
#pragma once

#include <cstddef>
#include <functional>
#include <thread>
#include <vector>

#include "core/bounded_queue.h"

namespace walferry {

class ThreadPool {
 public:
  // threads == 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(std::size_t threads, std::size_t queue_capacity = 1024);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Blocks while the task queue is full.
  void Submit(std::function<void()> task);
  std::size_t size() const { return threads_.size(); }

  static std::size_t DefaultThreads();

 private:
  BoundedQueue<std::function<void()>> tasks_;
  std::vector<std::thread> threads_;
};

}  // namespace walferry
