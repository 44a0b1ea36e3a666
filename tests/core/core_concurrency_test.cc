// BoundedQueue and BufferPool: the pieces that bound a pipeline's memory
// (ThreadPool's promises: core_thread_pool_test.cc). Run under TSan in CI.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "core/bounded_queue.h"
#include "core/buffer_pool.h"
#include "core/thread_pool.h"
#include "tests/support/eventually.h"

namespace walferry {
namespace {

using namespace std::chrono_literals;

using testing_support::Eventually;

TEST(BoundedQueue, FifoOrder) {
  BoundedQueue<int> q(4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(q.Push(i));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q.Pop(), i);
}

TEST(BoundedQueue, ZeroCapacityMeansOne) {
  BoundedQueue<int> q(0);
  EXPECT_TRUE(q.Push(1));
  std::atomic<bool> pushed{false};
  std::thread t([&] {
    q.Push(2);
    pushed = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(pushed.load());  // capacity 1 is full
  EXPECT_EQ(q.Pop(), 1);
  t.join();
  EXPECT_TRUE(pushed.load());
  EXPECT_EQ(q.Pop(), 2);
}

TEST(BoundedQueue, PushBlocksWhileFullUntilPop) {
  BoundedQueue<int> q(2);
  q.Push(1);
  q.Push(2);
  std::atomic<int> stage{0};
  std::thread producer([&] {
    stage = 1;
    EXPECT_TRUE(q.Push(3));
    stage = 2;
  });
  ASSERT_TRUE(Eventually([&] { return stage.load() == 1; }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(stage.load(), 1);  // still blocked: the queue is full
  EXPECT_EQ(q.Pop(), 1);
  producer.join();
  EXPECT_EQ(stage.load(), 2);
  EXPECT_EQ(q.Pop(), 2);
  EXPECT_EQ(q.Pop(), 3);
}

TEST(BoundedQueue, CloseDrainsThenReturnsNullopt) {
  BoundedQueue<std::string> q(8);
  q.Push("a");
  q.Push("b");
  q.Close();
  EXPECT_FALSE(q.Push("c"));  // refused after Close
  EXPECT_EQ(q.Pop(), "a");
  EXPECT_EQ(q.Pop(), "b");
  EXPECT_EQ(q.Pop(), std::nullopt);
  EXPECT_EQ(q.Pop(), std::nullopt);
}

TEST(BoundedQueue, CloseWakesBlockedConsumersAndProducers) {
  BoundedQueue<int> empty(1);
  BoundedQueue<int> full(1);
  full.Push(0);
  auto consumer = std::async(std::launch::async, [&] { return empty.Pop(); });
  auto producer = std::async(std::launch::async, [&] { return full.Push(1); });
  std::this_thread::sleep_for(20ms);
  empty.Close();
  full.Close();
  EXPECT_EQ(consumer.get(), std::nullopt);
  EXPECT_FALSE(producer.get());
  EXPECT_EQ(full.Pop(), 0);  // what was queued before Close is still delivered
  EXPECT_EQ(full.Pop(), std::nullopt);
}

TEST(BoundedQueue, MoveOnlyElements) {
  BoundedQueue<std::unique_ptr<int>> q(2);
  q.Push(std::make_unique<int>(5));
  auto v = q.Pop();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(**v, 5);
}

TEST(BoundedQueue, ManyProducersManyConsumersDeliverEachItemOnce) {
  constexpr int kProducers = 4, kConsumers = 3, kPerProducer = 5000;
  BoundedQueue<int> q(16);
  std::vector<std::thread> producers, consumers;
  std::vector<std::vector<int>> got(kConsumers);
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      while (auto v = q.Pop()) got[c].push_back(*v);
    });
  }
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) ASSERT_TRUE(q.Push(p * kPerProducer + i));
    });
  }
  for (auto& t : producers) t.join();
  q.Close();
  for (auto& t : consumers) t.join();
  std::vector<int> all;
  for (int c = 0; c < kConsumers; ++c) {
    // Each producer's items reach any one consumer in the order pushed.
    std::vector<int> last(kProducers, -1);
    for (int v : got[c]) {
      EXPECT_GT(v, last[v / kPerProducer]);
      last[v / kPerProducer] = v;
    }
    all.insert(all.end(), got[c].begin(), got[c].end());
  }
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kProducers * kPerProducer));
  for (int i = 0; i < kProducers * kPerProducer; ++i) ASSERT_EQ(all[i], i);
}

TEST(BufferPool, AllocatesLazilyAndReuses) {
  BufferPool pool(4096, 3);
  EXPECT_EQ(pool.allocated(), 0u);
  const std::byte* first;
  {
    PooledBuffer b = pool.Acquire();
    ASSERT_TRUE(b);
    EXPECT_EQ(b.capacity(), 4096u);
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(b.whole().size(), 4096u);
    first = b.data();
    std::memset(b.data(), 0xab, b.capacity());
    b.set_size(10);
    EXPECT_EQ(b.bytes().size(), 10u);
    EXPECT_EQ(pool.allocated(), 1u);
  }
  PooledBuffer again = pool.Acquire();
  EXPECT_EQ(again.data(), first);  // recycled, not reallocated
  EXPECT_EQ(again.size(), 0u);     // size is per handle
  EXPECT_EQ(pool.allocated(), 1u);
}

TEST(BufferPool, NeverAllocatesMoreThanMax) {
  BufferPool pool(1024, 4);
  std::atomic<int> out{0}, max_out{0};
  {
    ThreadPool workers(6);
    for (int i = 0; i < 400; ++i) {
      workers.Submit([&](std::size_t) {
        PooledBuffer b = pool.Acquire();
        int now = ++out;
        int prev = max_out.load();
        while (now > prev && !max_out.compare_exchange_weak(prev, now)) {
        }
        b.data()[0] = std::byte{1};
        std::this_thread::yield();
        --out;
      });
    }
  }
  EXPECT_LE(pool.allocated(), 4u);
  EXPECT_LE(max_out.load(), 4);
  EXPECT_GE(max_out.load(), 1);
}

TEST(BufferPool, AcquireBlocksUntilABufferReturns) {
  BufferPool pool(64, 2);
  PooledBuffer a = pool.Acquire();
  PooledBuffer b = pool.Acquire();
  const std::byte* a_data = a.data();
  std::atomic<bool> got{false};
  std::thread t([&] {
    PooledBuffer c = pool.Acquire();
    EXPECT_EQ(c.data(), a_data);
    got = true;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(got.load());
  a = PooledBuffer();  // move-assigning returns a's buffer to the pool
  t.join();
  EXPECT_TRUE(got.load());
  EXPECT_EQ(pool.allocated(), 2u);
}

TEST(BufferPool, MoveKeepsOneOwner) {
  BufferPool pool(64, 1);
  PooledBuffer a = pool.Acquire();
  a.set_size(5);
  PooledBuffer b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.capacity(), 0u);
  EXPECT_EQ(b.size(), 5u);
  PooledBuffer c;
  EXPECT_FALSE(c);
  c = std::move(b);
  EXPECT_TRUE(c);
  EXPECT_EQ(c.size(), 5u);
  // Exactly one buffer exists and it is held by c: releasing c frees it.
  c = PooledBuffer();
  PooledBuffer d = pool.Acquire();
  EXPECT_TRUE(d);
  EXPECT_EQ(pool.allocated(), 1u);
}

}  // namespace
}  // namespace walferry
