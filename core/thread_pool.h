// A fixed set of worker threads running submitted tasks: the one worker pool
// under the compress and decompress pipelines and the fan-out. Its shape is
// zstd's lib/common/pool.h (POOL_create / POOL_add / POOL_free); what follows
// is the whole contract.
//
// - Threads: all `size()` workers are started by the constructor and live
//   until the destructor; none is ever added, removed or restarted.
// - Order: one FIFO queue. Tasks *start* in the order they were submitted;
//   with more than one worker they may run concurrently and finish in any
//   order (with one worker, each finishes before the next starts). Ordering
//   results is the caller's job.
// - Submit blocks while `queue_capacity` tasks are waiting to start (running
//   tasks do not count), and never fails. A caller that bounds its own work
//   in flight to at most the capacity therefore never blocks in Submit.
// - Worker index: a task receives the index (0..size()-1) of the worker that
//   runs it. Two tasks running at the same time never share an index, so
//   per-worker state (one codec context per worker) indexed by it needs no
//   lock.
// - Memory: what the submitting thread wrote before Submit is visible to the
//   task; what a task wrote is visible to whoever observes its completion
//   through a synchronizing operation (the task's own atomic/mutex, or the
//   pool's destructor returning).
// - Errors are values: a task returns nothing and reports through state it
//   captured (a Status per job, an atomic flag). A task must not throw: an
//   exception escaping a task calls std::terminate, as for any std::thread.
// - Destructor: runs every task already queued (it drains, it does not
//   cancel), then joins every worker. A caller that wants to stop early tells
//   its tasks through their own state (e.g. an atomic "stop" they check first).
// - Lifetimes: everything a task references must outlive the task's end.
//   The simplest way: declare the pool after that state, so the pool is
//   destroyed (drained and joined) first, on every return path.
// - Thread-safety: Submit may be called from several threads at once, and
//   from a task; but a task that Submits to its own pool while the queue is
//   full blocks its worker, and when every worker does that nothing is ever
//   dequeued again (deadlock). The pool must not be destroyed from one of its
//   own tasks, nor Submitted to during or after destruction: a task that the
//   destructor is draining and that Submits has its new task dropped, unrun.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "core/bounded_queue.h"

namespace walferry {

class ThreadPool {
 public:
  // The argument is the index of the worker running the task, 0..size()-1.
  using Task = std::function<void(std::size_t worker)>;

  // threads == 0 means DefaultThreads(); queue_capacity == 0 means 1.
  explicit ThreadPool(std::size_t threads, std::size_t queue_capacity = 1024);
  // Drains the queue, then joins (see above).
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`; blocks while the queue holds queue_capacity tasks.
  void Submit(Task task);
  std::size_t size() const { return threads_.size(); }

  // std::thread::hardware_concurrency(), or 1 when it is unknown.
  static std::size_t DefaultThreads();

 private:
  BoundedQueue<Task> tasks_;
  std::vector<std::thread> threads_;
};

// How an owner learns that one task's job is finished. The task calls Set()
// as its last touch of the job; the owner's Wait() (or IsSet() returning
// true) then happens-after everything the task wrote. The owner Reset()s the
// flag before handing the job to a new task. Set from any thread; IsSet,
// Wait and Reset from the owner.
class DoneFlag {
 public:
  void Set() {
    std::lock_guard lk(mu_);
    done_ = true;
    cv_.notify_all();  // under the lock: the owner cannot destroy us in between
  }
  bool IsSet() {
    std::lock_guard lk(mu_);
    return done_;
  }
  void Wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return done_; });
  }
  void Reset() {
    std::lock_guard lk(mu_);
    done_ = false;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

}  // namespace walferry
