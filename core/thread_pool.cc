#include "core/thread_pool.h"

namespace walferry {

std::size_t ThreadPool::DefaultThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

ThreadPool::ThreadPool(std::size_t threads, std::size_t queue_capacity) : tasks_(queue_capacity) {
  if (threads == 0) threads = DefaultThreads();
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      while (auto task = tasks_.Pop()) (*task)();
    });
  }
}

ThreadPool::~ThreadPool() {
  tasks_.Close();
  for (auto& t : threads_) t.join();
}

void ThreadPool::Submit(std::function<void()> task) { tasks_.Push(std::move(task)); }

}  // namespace walferry
