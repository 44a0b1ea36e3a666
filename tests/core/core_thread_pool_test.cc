// ThreadPool and DoneFlag: one test per promise of core/thread_pool.h. Run
// under TSan in CI, which is what proves the memory-ordering and
// worker-index promises (the tests use plain, unsynchronized variables where
// the contract says no lock is needed).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/thread_pool.h"
#include "tests/support/eventually.h"

namespace walferry {
namespace {

using namespace std::chrono_literals;

using testing_support::Eventually;

TEST(ThreadPool, StartsEveryThreadAtConstruction) {
  constexpr int kThreads = 3;
  std::atomic<int> arrived{0};
  std::atomic<int> met{0};
  {
    ThreadPool pool(kThreads);
    EXPECT_EQ(pool.size(), static_cast<std::size_t>(kThreads));
    // Each task waits until all three are running at once: only three live
    // workers let every one of them see the others.
    for (int i = 0; i < kThreads; ++i) {
      pool.Submit([&](std::size_t) {
        ++arrived;
        if (Eventually([&] { return arrived.load() == kThreads; })) ++met;
      });
    }
  }
  EXPECT_EQ(met.load(), kThreads);
}

TEST(ThreadPool, ZeroThreadsMeansDefaultThreads) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), ThreadPool::DefaultThreads());
  EXPECT_GE(pool.size(), 1u);
}

TEST(ThreadPool, OneWorkerRunsTasksOneAfterAnotherInSubmissionOrder) {
  std::vector<int> order;  // written by the one worker only, read after the join
  std::atomic<int> running{0}, most{0};
  {
    ThreadPool pool(1, 8);
    for (int i = 0; i < 200; ++i) {
      pool.Submit([&, i](std::size_t worker) {
        EXPECT_EQ(worker, 0u);
        int now = ++running;
        most = std::max(most.load(), now);
        order.push_back(i);
        --running;
      });
    }
  }
  ASSERT_EQ(order.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(most.load(), 1);
}

TEST(ThreadPool, SubmitBlocksWhileTheQueueIsFullAndRunningTasksDoNotCount) {
  std::atomic<bool> started{false}, release{false};
  std::atomic<int> ran{0};
  std::atomic<int> submitted{0};
  ThreadPool pool(1, 2);  // declared last: joined before what its tasks use goes away
  pool.Submit([&](std::size_t) {  // occupies the only worker
    started = true;
    Eventually([&] { return release.load(); });
    ++ran;
  });
  ASSERT_TRUE(Eventually([&] { return started.load(); }));  // out of the queue, running
  std::thread submitter([&] {
    for (int i = 0; i < 3; ++i) {
      pool.Submit([&](std::size_t) { ++ran; });
      ++submitted;
    }
  });
  // Two fit in the queue (the running task is not in it); the third waits.
  ASSERT_TRUE(Eventually([&] { return submitted.load() == 2; }));
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(submitted.load(), 2);
  release = true;
  submitter.join();
  EXPECT_EQ(submitted.load(), 3);
  EXPECT_TRUE(Eventually([&] { return ran.load() == 4; }));
}

TEST(ThreadPool, ConcurrentTasksNeverShareAWorkerIndex) {
  constexpr std::size_t kThreads = 4;
  // Plain counters per worker index: if two running tasks shared an index,
  // TSan would report the race on `count[worker]`.
  std::vector<long> count(kThreads, 0);
  std::vector<std::atomic<int>> inside(kThreads);
  std::atomic<bool> shared{false}, out_of_range{false};
  {
    ThreadPool pool(kThreads, 16);
    for (int i = 0; i < 4000; ++i) {
      pool.Submit([&](std::size_t worker) {
        if (worker >= kThreads) {
          out_of_range = true;
          return;
        }
        if (inside[worker].exchange(1) != 0) shared = true;
        ++count[worker];
        std::this_thread::yield();
        inside[worker] = 0;
      });
    }
  }
  EXPECT_FALSE(shared.load());
  EXPECT_FALSE(out_of_range.load());
  long total = 0;
  for (long c : count) total += c;
  EXPECT_EQ(total, 4000);
}

TEST(ThreadPool, WritesBeforeSubmitAndTaskWritesBeforeDoneAreVisible) {
  struct Job {
    int input = 0;
    int output = 0;  // plain ints: the pool and DoneFlag must order them
    DoneFlag done;
  };
  std::vector<Job> jobs(64);
  ThreadPool pool(3, jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].input = static_cast<int>(i) * 3;
    pool.Submit([&job = jobs[i]](std::size_t) {
      job.output = job.input + 1;
      job.done.Set();
    });
  }
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].done.Wait();
    EXPECT_TRUE(jobs[i].done.IsSet());
    EXPECT_EQ(jobs[i].output, static_cast<int>(i) * 3 + 1);
  }
}

TEST(ThreadPool, DestructorRunsEveryQueuedTaskThenJoins) {
  constexpr int kQueued = 50;
  std::atomic<bool> destroying{false};
  std::atomic<int> ran_during_destruction{0};
  int ran = 0;  // plain: written by the one worker, read after the join
  {
    ThreadPool pool(1, kQueued + 1);
    pool.Submit([&](std::size_t) { std::this_thread::sleep_for(50ms); });
    for (int i = 0; i < kQueued; ++i) {
      pool.Submit([&](std::size_t) {
        if (destroying.load()) ++ran_during_destruction;
        ++ran;
      });
    }
    destroying = true;
  }  // drains: nothing queued is dropped
  EXPECT_EQ(ran, kQueued);
  EXPECT_GT(ran_during_destruction.load(), 0);  // they really were queued at the destructor
}

TEST(ThreadPool, StateDeclaredBeforeThePoolOutlivesEveryTask) {
  // The pattern the header prescribes: no explicit wait, the pool's
  // destructor (it is declared last) ends every task before `results` goes.
  std::vector<int> results(32, 0);
  ThreadPool pool(2, results.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    pool.Submit([&results, i](std::size_t) {
      std::this_thread::sleep_for(1ms);
      results[i] = 1;
    });
  }
  // Leaving the scope here is the test (ASan/TSan see a late write).
}

TEST(ThreadPool, SubmitFromSeveralThreadsAndFromATaskWithRoom) {
  std::atomic<long> sum{0};
  {
    ThreadPool pool(2, 4096);  // room for every task: a task's Submit never blocks
    std::vector<std::thread> submitters;
    for (int t = 0; t < 4; ++t) {
      submitters.emplace_back([&] {
        for (int i = 1; i <= 500; ++i) {
          pool.Submit([&, i](std::size_t) {
            sum += i;
            // A task may Submit to its own pool while the queue has room.
            if (i == 500) pool.Submit([&](std::size_t) { sum += 1000000; });
          });
        }
      });
    }
    for (auto& s : submitters) s.join();
    // The nested Submits must happen before the destructor starts (a Submit
    // during destruction, even from a task being drained, is dropped).
    EXPECT_TRUE(Eventually([&] { return sum.load() == 4 * (500 * 501 / 2) + 4 * 1000000; }));
  }
  EXPECT_EQ(sum.load(), 4 * (500 * 501 / 2) + 4 * 1000000);
}

TEST(ThreadPoolDeathTest, ATaskThatThrowsTerminatesTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ThreadPool pool(1);
        pool.Submit([](std::size_t) { throw std::runtime_error("task failed"); });
      },
      "terminate called");
}

TEST(DoneFlag, WaitBlocksUntilSetAndResetRearms) {
  DoneFlag flag;
  EXPECT_FALSE(flag.IsSet());
  std::atomic<bool> woke{false};
  std::thread waiter([&] {
    flag.Wait();
    woke = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(woke.load());
  flag.Set();
  waiter.join();
  EXPECT_TRUE(woke.load());
  EXPECT_TRUE(flag.IsSet());
  flag.Wait();  // already set: returns at once
  flag.Reset();
  EXPECT_FALSE(flag.IsSet());
}

}  // namespace
}  // namespace walferry
