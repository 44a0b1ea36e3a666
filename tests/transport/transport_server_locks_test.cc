// The receiver holds no lock across network I/O (issue 8, point 6): a refused
// client that never reads its ERROR does not delay another session's transfer
// start, its end, or the start of a new session. In-process server, scripted
// in-memory connections (no timing races: the stuck client stays stuck until
// the test ends; each expectation waits for an event with a generous deadline
// that only a blocked server reaches).
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>

#include "archive/archive.h"
#include "transport/server.h"
#include "transport/wire.h"

namespace walferry::transport {
namespace {

using namespace std::chrono_literals;
constexpr auto kDeadline = 15s;

// A connection whose peer the test scripts: bytes the server reads are fed
// with Send(); frames the server writes are parsed and kept.
class ScriptConn final : public Conn {
 public:
  explicit ScriptConn(std::string name, bool stuck_writes = false)
      : name_(std::move(name)), stuck_(stuck_writes) {}

  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !in_.empty() || eof_ || shut_; });
    if (in_.empty()) return shut_ ? Result<std::size_t>(Error(ErrorCode::kNetwork, "shut down")) : std::size_t{0};
    std::size_t n = std::min(buf.size(), in_.size());
    for (std::size_t i = 0; i < n; ++i) {
      buf[i] = in_.front();
      in_.pop_front();
    }
    return n;
  }
  Status WriteAll(std::span<const std::byte> data) override {
    std::unique_lock lk(mu_);
    if (stuck_) {
      // A client that never reads: the write blocks until the test lets go.
      write_entered_ = true;
      cv_.notify_all();
      cv_.wait_for(lk, 60s, [&] { return released_; });
    }
    out_.insert(out_.end(), data.begin(), data.end());
    for (;;) {
      std::size_t need = 0;
      auto f = ParseFrame(out_, &need);
      if (!f.ok() || f->consumed == 0) break;
      types_.push_back(TypeOf(f->frame));
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(f->consumed));
    }
    cv_.notify_all();
    return Status::Ok();
  }
  void Shutdown() override {
    std::lock_guard lk(mu_);
    shut_ = true;
    cv_.notify_all();
  }
  const std::string& peer_cluster() const override { return cluster_; }
  std::string peer_address() const override { return name_; }
  void SetTimeout(std::chrono::milliseconds) override {}

  void Send(const Frame& f) {
    std::vector<std::byte> b;
    ASSERT_TRUE(EncodeFrame(f, b).ok());
    std::lock_guard lk(mu_);
    in_.insert(in_.end(), b.begin(), b.end());
    cv_.notify_all();
  }
  void CloseInput() {
    std::lock_guard lk(mu_);
    eof_ = true;
    cv_.notify_all();
  }
  void Release() {
    std::lock_guard lk(mu_);
    released_ = true;
    cv_.notify_all();
  }
  // Waits until the server wrote a frame of type `t`.
  bool WaitFrame(FrameType t) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, kDeadline, [&] {
      return std::find(types_.begin(), types_.end(), t) != types_.end();
    });
  }
  bool WaitEither(FrameType t1, FrameType t2) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, kDeadline, [&] {
      return std::find(types_.begin(), types_.end(), t1) != types_.end() ||
             std::find(types_.begin(), types_.end(), t2) != types_.end();
    });
  }
  bool Got(FrameType t) {
    std::lock_guard lk(mu_);
    return std::find(types_.begin(), types_.end(), t) != types_.end();
  }
  bool WaitWriteEntered() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, kDeadline, [&] { return write_entered_; });
  }
  bool WaitShutdown() {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, kDeadline, [&] { return shut_; });
  }

 private:
  std::string name_, cluster_;
  bool stuck_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::byte> in_;
  std::vector<std::byte> out_;
  std::vector<FrameType> types_;
  bool eof_ = false, shut_ = false, released_ = false, write_entered_ = false;
};

// Hands out the connections the test pushes, in order.
class ScriptListener final : public Listener {
 public:
  void Push(ScriptConn* c) {
    std::lock_guard lk(mu_);
    q_.push_back(c);
    cv_.notify_all();
  }
  Result<std::unique_ptr<Conn>> Accept() override {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return Error(ErrorCode::kNetwork, "listener closed");
    ScriptConn* c = q_.front();
    q_.pop_front();
    // The server owns a forwarding handle; the test keeps the ScriptConn.
    struct Handle final : Conn {
      explicit Handle(ScriptConn* c) : c(c) {}
      Result<std::size_t> ReadSome(std::span<std::byte> b) override { return c->ReadSome(b); }
      Status WriteAll(std::span<const std::byte> d) override { return c->WriteAll(d); }
      void Shutdown() override { c->Shutdown(); }
      const std::string& peer_cluster() const override { return c->peer_cluster(); }
      std::string peer_address() const override { return c->peer_address(); }
      void SetTimeout(std::chrono::milliseconds t) override { c->SetTimeout(t); }
      ScriptConn* c;
    };
    return std::unique_ptr<Conn>(new Handle(c));
  }
  int port() const override { return 0; }
  Result<std::string> Reload() override { return std::string("nothing to reload"); }
  void Close() override {
    std::lock_guard lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ScriptConn*> q_;
  bool closed_ = false;
};

TEST(ServerLocks, StuckRefusedClientDelaysNoOtherSession) {
  char tmpl[] = "/tmp/wf-server-locks.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  auto archive = archive::Archive::Open(root, archive::StoreFormat::kRaw);
  ASSERT_TRUE(archive.ok()) << archive.error().message();
  ServerOptions so;
  so.insecure = true;
  so.max_connections = 2;
  so.log = [](const std::string&) {};
  Server server(**archive, so);
  ScriptListener listener;
  std::thread run([&] { (void)server.Run(listener); });

  const HelloFrame hello{kProtocolVersion, kFeatureNone, "main"};
  ScriptConn a("a"), x("x"), stuck("stuck", /*stuck_writes=*/true);
  a.Send(hello);
  x.Send(hello);
  listener.Push(&a);
  listener.Push(&x);
  ASSERT_TRUE(a.WaitFrame(FrameType::kHello));
  ASSERT_TRUE(x.WaitFrame(FrameType::kHello));
  // Both slots taken: the next client is refused, and it never reads.
  listener.Push(&stuck);
  ASSERT_TRUE(stuck.WaitWriteEntered());

  // A transfer starts on `a` (Claim and Begin) while the refusal is stuck.
  OpenFrame open;
  open.name = "file.bin";
  open.raw_size = 0;
  open.codec = WireCodec::kZstd;
  a.Send(open);
  EXPECT_TRUE(a.WaitFrame(FrameType::kOpened)) << "a transfer's start waited for a stuck client";
  // ...and ends: COMMIT of the empty file, then the session closes.
  a.Send(CommitFrame{0, Xxh3_128({})});
  EXPECT_TRUE(a.WaitFrame(FrameType::kCommitted)) << "a transfer's end waited for a stuck client";
  a.CloseInput();
  EXPECT_TRUE(a.WaitShutdown()) << "a session's end waited for a stuck client";

  // A new session starts (retrying while the ended one is not yet reaped and
  // the server, still full, refuses it: refusals are answered too).
  bool served = false;
  std::deque<ScriptConn> clients;
  for (int i = 0; i < 100 && !served; ++i) {
    auto& c = clients.emplace_back("c" + std::to_string(i));
    c.Send(hello);
    listener.Push(&c);
    ASSERT_TRUE(c.WaitEither(FrameType::kHello, FrameType::kError))
        << "a new connection was not answered while a refused client is stuck";
    served = c.Got(FrameType::kHello);
    if (!served) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(served);

  stuck.Release();
  server.Stop();
  run.join();
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace walferry::transport
