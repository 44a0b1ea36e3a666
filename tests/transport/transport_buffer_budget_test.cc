// The receiver's shared buffer budget (serve --max-buffer-mb): the budget
// itself under racing threads (run under TSan: .ci/run's threaded targets),
// and a real Server on loopback with real Senders: frames are admitted
// against one budget, a connection that cannot get memory is told "receiver
// busy" (retryable; with retries every transfer completes), a frame larger
// than the whole budget is refused without retrying.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "archive/archive.h"
#include "core/hash.h"
#include "transport/buffer_budget.h"
#include "transport/fetch.h"
#include "transport/sender.h"
#include "transport/server.h"

namespace walferry::transport {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(BufferBudget, AcquireReleaseRefuseAndTimeOut) {
  BufferBudget b(10);
  EXPECT_TRUE(b.Acquire(6, Clock::now() + 1s, nullptr, nullptr).ok());
  EXPECT_EQ(b.used(), 6u);
  auto big = b.Acquire(11, Clock::now() + 1s, nullptr, nullptr);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code(), ErrorCode::kRefused);
  EXPECT_NE(big.error().message().find("--max-buffer-mb"), std::string::npos) << big.error().message();
  auto t0 = Clock::now();
  auto busy = b.Acquire(5, Clock::now() + 150ms, nullptr, nullptr);
  ASSERT_FALSE(busy.ok());
  EXPECT_EQ(busy.error().code(), ErrorCode::kNetwork);
  EXPECT_NE(busy.error().message().find("receiver busy"), std::string::npos) << busy.error().message();
  EXPECT_GE(Clock::now() - t0, 140ms);
  EXPECT_EQ(b.waiters(), 0u);
  b.Release(6);
  EXPECT_EQ(b.used(), 0u);
  EXPECT_EQ(b.peak(), 6u);
}

TEST(BufferBudget, ReleaseWakesAWaiterAndReclaimIsAsked) {
  BufferBudget b(10);
  ASSERT_TRUE(b.Acquire(8, Clock::now() + 1s, nullptr, nullptr).ok());
  std::atomic<int> reclaims{0};
  std::thread t([&] {
    std::this_thread::sleep_for(100ms);
    b.Release(8);
  });
  auto t0 = Clock::now();
  Status st = b.Acquire(5, Clock::now() + 10s, [&] { ++reclaims; return false; }, nullptr);
  t.join();
  EXPECT_TRUE(st.ok());
  EXPECT_LT(Clock::now() - t0, 5s);
  EXPECT_GE(reclaims.load(), 1);
  // A reclaim that frees memory is retried at once.
  BufferBudget c(10);
  ASSERT_TRUE(c.Acquire(10, Clock::now() + 1s, nullptr, nullptr).ok());
  EXPECT_TRUE(c.Acquire(4, Clock::now() + 10s, [&] { c.Release(10); return true; }, nullptr).ok());
  // give_up ends the wait.
  BufferBudget d(1);
  ASSERT_TRUE(d.Acquire(1, Clock::now() + 1s, nullptr, nullptr).ok());
  t0 = Clock::now();
  EXPECT_FALSE(d.Acquire(1, Clock::now() + 30s, nullptr, [] { return true; }).ok());
  EXPECT_LT(Clock::now() - t0, 5s);
}

// Racing threads never hold more than the capacity together, and all of it comes back.
TEST(BufferBudget, RacingThreadsStayWithinCapacity) {
  constexpr std::uint64_t kCap = 1000;
  BufferBudget b(kCap);
  std::atomic<std::uint64_t> held{0}, over{0}, got{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 300; ++i) {
        std::uint64_t n = 1 + rng() % (kCap / 2);
        if (!b.Acquire(n, Clock::now() + 2s, nullptr, nullptr).ok()) continue;
        ++got;
        if (held.fetch_add(n) + n > kCap) ++over;
        std::this_thread::yield();
        held.fetch_sub(n);
        b.Release(n);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(over.load(), 0u);
  EXPECT_GT(got.load(), 0u);
  EXPECT_EQ(b.used(), 0u);
  EXPECT_LE(b.peak(), kCap);
}

TEST(BufferBudget, DefaultIsDerivedFromTheLimits) {
  // Four connections with the largest chunks into a compressing store fit.
  EXPECT_GE(DefaultBufferBudget(1), 4 * FrameBufferNeed(kMaxFrameBody, kMaxChunkRaw, true));
  // 64 connections (the default) at the default 1 MiB chunk fit.
  const auto per = FrameBufferNeed(static_cast<std::uint32_t>(kChunkFixedSize + compress::MaxCompressedSize(1u << 20)),
                                   1u << 20, true);
  EXPECT_GE(DefaultBufferBudget(64), 64 * per);
  EXPECT_GE(DefaultBufferBudget(1000), 1000 * per);
  EXPECT_EQ(DefaultBufferBudget(64) % (1u << 20), 0u);
}

class BudgetServer : public ::testing::Test {
 protected:
  void Start(std::uint64_t budget, std::chrono::milliseconds wait) {
    dir_ = std::filesystem::temp_directory_path() / ("wf-budget-" + std::to_string(::getpid()) + "-" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    auto a = archive::Archive::Open(dir_.string(), archive::StoreFormat::kZstd);
    ASSERT_TRUE(a.ok()) << a.error().message();
    archive_ = std::move(*a);
    TlsConfig tls;
    tls.insecure_loopback = true;
    auto l = Listen(Endpoint{"127.0.0.1", 0}, tls);
    ASSERT_TRUE(l.ok()) << l.error().message();
    listener_ = std::move(*l);
    ServerOptions so;
    so.insecure = true;
    so.max_buffer_bytes = budget;
    so.buffer_wait = wait;
    so.log = [](const std::string&) {};
    server_ = std::make_unique<Server>(*archive_, so);
    thread_ = std::thread([this] { (void)server_->Run(*listener_); });
  }
  void TearDown() override {
    if (server_) {
      server_->Stop();
      thread_.join();
    }
    std::filesystem::remove_all(dir_);
  }
  SendOptions Options(std::size_t chunk, int retries) {
    SendOptions o;
    int port = listener_->port();
    o.connect = [port]() {
      TlsConfig tls;
      tls.insecure_loopback = true;
      return Connect(Endpoint{"127.0.0.1", port}, tls);
    };
    o.cluster = "main";
    o.threads = 1;
    o.chunk_size = chunk;
    o.max_retries = retries;
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    return o;
  }
  std::string File(std::size_t size, unsigned seed) {
    std::string s(size, '\0');
    std::mt19937_64 rng(seed);
    for (std::size_t i = 0; i + 8 <= size; i += 8) {
      std::uint64_t v = rng();
      std::memcpy(&s[i], &v, 8);
    }
    auto p = (dir_.string() + "-src-" + std::to_string(seed));
    std::ofstream(p, std::ios::binary) << s;
    srcs_.push_back(p);
    return p;
  }
  ~BudgetServer() override {
    for (auto& p : srcs_) std::filesystem::remove(p);
  }

  std::filesystem::path dir_;
  std::vector<std::string> srcs_;
  std::unique_ptr<archive::Archive> archive_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
};

// 4 MiB chunks of incompressible data into a zstd store: one connection needs
// ~14 MiB (frame, decompressed chunk, the store's compressor); 30 MiB admit two.
constexpr std::size_t kChunk = 4u << 20;

TEST_F(BudgetServer, ConcurrentSendersShareTheBudgetAndAllComplete) {
  Start(30u << 20, 300ms);
  const int kSenders = 6;
  std::vector<std::string> files;
  for (int i = 0; i < kSenders; ++i) files.push_back(File(3 * kChunk, static_cast<unsigned>(i + 1)));
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  std::vector<std::string> errors(kSenders);
  for (int i = 0; i < kSenders; ++i) {
    ts.emplace_back([&, i] {
      Sender s(Options(kChunk, 40));
      auto r = s.SendFile(files[static_cast<std::size_t>(i)], "f" + std::to_string(i) + ".bin");
      if (r.ok()) {
        ++ok;
      } else {
        errors[static_cast<std::size_t>(i)] = r.error().message();
      }
    });
  }
  for (auto& t : ts) t.join();
  for (const auto& e : errors) EXPECT_TRUE(e.empty()) << e;
  EXPECT_EQ(ok.load(), kSenders);
  const auto& b = server_->buffer_budget();
  EXPECT_LE(b.peak(), b.capacity());
  EXPECT_GE(b.peak(), FrameBufferNeed(static_cast<std::uint32_t>(kChunkFixedSize + kChunk), kChunk, true));
  for (int i = 0; i < kSenders; ++i) {
    auto e = archive_->Find("main", "f" + std::to_string(i) + ".bin");
    ASSERT_TRUE(e.ok()) << e.error().message();
    class HashSink final : public ByteSink {
     public:
      Status Write(std::span<const std::byte> d) override {
        h.Update(d);
        return Status::Ok();
      }
      Status Finish() override { return Status::Ok(); }
      Xxh3Stream h;
    } sink;
    ASSERT_TRUE(archive_->Read(*e, sink).ok());
    std::ifstream in(files[static_cast<std::size_t>(i)], std::ios::binary);
    std::string want((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(sink.h.Digest(), Xxh3_128(std::as_bytes(std::span(want))));
  }
}

TEST_F(BudgetServer, WithoutRetriesTheBusyOnesAreToldSo) {
  Start(16u << 20, 100ms);  // one connection at a time
  const int kSenders = 4;
  std::vector<std::string> files;
  for (int i = 0; i < kSenders; ++i) files.push_back(File(4 * kChunk, static_cast<unsigned>(i + 11)));
  std::vector<std::thread> ts;
  std::atomic<int> ok{0}, busy{0}, other{0};
  for (int i = 0; i < kSenders; ++i) {
    ts.emplace_back([&, i] {
      Sender s(Options(kChunk, 0));
      auto r = s.SendFile(files[static_cast<std::size_t>(i)], "b" + std::to_string(i) + ".bin");
      if (r.ok()) {
        ++ok;
      } else if (r.error().message().find("receiver busy") != std::string::npos) {
        ++busy;
      } else {
        ++other;
        ADD_FAILURE() << r.error().message();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_GE(ok.load(), 1);
  EXPECT_GE(busy.load(), 1);
  EXPECT_EQ(other.load(), 0);
  // Whatever failed left nothing under its final name.
  for (int i = 0; i < kSenders; ++i) {
    auto e = archive_->Find("main", "b" + std::to_string(i) + ".bin");
    if (!e.ok()) {
      EXPECT_EQ(e.error().code(), ErrorCode::kNotFound);
    }
  }
  EXPECT_LE(server_->buffer_budget().peak(), server_->buffer_budget().capacity());
}

TEST_F(BudgetServer, AFrameLargerThanTheWholeBudgetIsRefusedAtOnce) {
  Start(8u << 20, 5s);
  auto f = File(kChunk, 99);
  Sender s(Options(kChunk, 8));
  auto t0 = Clock::now();
  auto r = s.SendFile(f, "big.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused) << r.error().message();
  EXPECT_NE(r.error().message().find("--max-buffer-mb"), std::string::npos) << r.error().message();
  EXPECT_LT(Clock::now() - t0, 4s);  // neither waited for memory nor retried
}

// FETCH and HAVE read a stored entry: those reads are charged to the same
// budget (store::Store::ReadMemory plus the chunk being sent). Many FETCHes at
// once never hold more than the budget together, each is charged (the peak
// covers at least one read), the ones that get no memory are told "receiver
// busy" (retryable), and with retries every FETCH completes byte-identical.
TEST_F(BudgetServer, ConcurrentFetchesAreChargedAndStayWithinTheBudget) {
  constexpr std::uint64_t kBudget = 24u << 20;
  Start(kBudget, 200ms);
  // Stored directly, not through the server: its budget sees only the reads.
  std::vector<std::byte> data(8u << 20);
  std::mt19937_64 rng(11);
  for (std::size_t i = 0; i + 8 <= data.size(); i += 8) {
    std::uint64_t v = rng() & 0x0f0f0f0f0f0f0f0fULL;  // compressible, not trivially
    std::memcpy(&data[i], &v, 8);
  }
  {
    auto inc = archive_->Begin({"main", "fetched.bin", "00112233445566778899aabbccddeeff",
                                static_cast<std::int64_t>(data.size())});
    ASSERT_TRUE(inc.ok()) << inc.error().message();
    constexpr std::size_t kPiece = 1u << 20;
    for (std::size_t i = 0; i * kPiece < data.size(); ++i) {
      auto raw = std::span<const std::byte>(data).subspan(i * kPiece, kPiece);
      ASSERT_TRUE((*inc)->Append(i, raw, compress::Algorithm::kRaw, raw).ok());
    }
    auto c = (*inc)->Commit(data.size(), Xxh3_128(data));
    ASSERT_TRUE(c.ok()) << c.error().message();
  }
  auto entry = archive_->Find("main", "fetched.bin");
  ASSERT_TRUE(entry.ok());
  const std::uint64_t read_need = archive_->ReadMemory(*entry);
  EXPECT_GT(read_need, 2u << 20) << "a read of 1 MiB frames takes several MiB";
  EXPECT_LT(read_need, kBudget / 2);

  class Collect final : public ByteSink {
   public:
    Status Write(std::span<const std::byte> d) override {
      bytes.insert(bytes.end(), d.begin(), d.end());
      return Status::Ok();
    }
    Status Finish() override { return Status::Ok(); }
    std::vector<std::byte> bytes;
  };
  const int kClients = 10;
  std::atomic<int> ok{0}, busy{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::thread> ts;
  const int port = listener_->port();
  for (int i = 0; i < kClients; ++i) {
    ts.emplace_back([&, i] {
      TlsConfig tls;
      tls.insecure_loopback = true;
      for (int attempt = 0; attempt < 300; ++attempt) {
        Collect sink;
        Status st = Fetch(Endpoint{"127.0.0.1", port}, tls, "main", "fetched.bin", sink);
        if (st.ok()) {
          if (sink.bytes == data) ++ok;
          else errors[static_cast<std::size_t>(i)] = "wrong content";
          return;
        }
        if (st.error().code() == ErrorCode::kNetwork &&
            st.error().message().find("receiver busy") != std::string::npos) {
          ++busy;
          std::this_thread::sleep_for(20ms);
          continue;
        }
        errors[static_cast<std::size_t>(i)] = st.error().message();
        return;
      }
      errors[static_cast<std::size_t>(i)] = "still busy after 300 attempts";
    });
  }
  for (auto& t : ts) t.join();
  for (const auto& e : errors) EXPECT_TRUE(e.empty()) << e;
  EXPECT_EQ(ok.load(), kClients);
  const std::uint64_t peak = server_->buffer_budget().peak();
  EXPECT_LE(peak, kBudget);
  EXPECT_GE(peak, read_need) << "FETCH is not charged to the budget";
  std::printf("[ budget ] %d FETCHes of 8 MiB, budget %llu MiB, a read charged %llu KiB: peak %llu KiB, "
              "%d busy answers\n",
              kClients, static_cast<unsigned long long>(kBudget >> 20),
              static_cast<unsigned long long>(read_need >> 10), static_cast<unsigned long long>(peak >> 10),
              busy.load());
}

}  // namespace
}  // namespace walferry::transport
