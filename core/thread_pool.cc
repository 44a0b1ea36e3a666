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
    // Pop returns nullopt only once the queue is closed and empty: the drain.
    threads_.emplace_back([this, i] {
      while (auto task = tasks_.Pop()) {
        (*task)(i);
        std::lock_guard lk(mu_);
        if (--unfinished_ == 0) idle_.notify_all();
      }
    });
  }
}

ThreadPool::~ThreadPool() {
  {
    // Closing only once nothing is unfinished lets a running task still
    // Submit (its follow-up then runs before the workers are joined).
    std::unique_lock lk(mu_);
    idle_.wait(lk, [&] { return unfinished_ == 0; });
  }
  tasks_.Close();
  for (auto& t : threads_) t.join();
}

void ThreadPool::Submit(Task task) {
  {
    std::lock_guard lk(mu_);
    ++unfinished_;
  }
  // Push fails only after Close, i.e. during destruction, which the contract excludes.
  tasks_.Push(std::move(task));
}

}  // namespace walferry
