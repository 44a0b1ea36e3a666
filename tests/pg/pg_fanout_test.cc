// Quorum fan-out (pg/fanout.h) against in-process receivers on real disk
// archives over loopback TCP: the quorum rule, the exists-different rule, the
// backlog entry for a missed target and its catch-up (from the source, or
// fetched from a peer when the source is gone). One thread per target: also
// run under TSan.
#include "pg/fanout.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "archive/archive.h"
#include "transport/net.h"
#include "transport/server.h"

namespace walferry::pg {
namespace {

namespace fs = std::filesystem;
using namespace transport;

struct Receiver {
  std::string root;
  std::unique_ptr<archive::Archive> archive;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Server> server;
  std::thread thread;
  std::atomic<bool> down{false};  // connections refused while set
  ~Receiver() {
    if (server) server->Stop();
    if (thread.joinable()) thread.join();
  }
};

class FanoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-fanout-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    for (int i = 0; i < 2; ++i) {
      auto r = std::make_unique<Receiver>();
      r->root = dir_ + "/root" + std::to_string(i);
      auto a = archive::Archive::Open(r->root, archive::StoreFormat::kZstd);
      ASSERT_TRUE(a.ok()) << a.error().message();
      r->archive = std::move(*a);
      TlsConfig tls;
      tls.insecure_loopback = true;
      auto l = Listen(Endpoint{"127.0.0.1", 0}, tls);
      ASSERT_TRUE(l.ok()) << l.error().message();
      r->listener = std::move(*l);
      ServerOptions so;
      so.insecure = true;
      so.log = [](const std::string&) {};
      r->server = std::make_unique<Server>(*r->archive, so);
      Receiver* raw = r.get();
      r->thread = std::thread([raw] { (void)raw->server->Run(*raw->listener); });
      rcv_.push_back(std::move(r));
    }
    auto b = Backlog::Open(dir_ + "/backlog", 3);
    ASSERT_TRUE(b.ok()) << b.error().message();
    backlog_ = std::make_unique<Backlog>(std::move(*b));
  }
  void TearDown() override {
    rcv_.clear();
    fs::remove_all(dir_);
  }

  FanoutOptions Options(std::size_t quorum) {
    FanoutOptions o;
    for (std::size_t i = 0; i < rcv_.size(); ++i) {
      Receiver* r = rcv_[i].get();
      FanoutTarget t;
      t.name = "r" + std::to_string(i);
      const int port = r->listener->port();
      TlsConfig tls;
      tls.insecure_loopback = true;
      t.send.connect = [r, port, tls]() -> Result<std::unique_ptr<Conn>> {
        if (r->down.load()) return Error(ErrorCode::kNetwork, "receiver down (test)");
        return Connect(Endpoint{"127.0.0.1", port}, tls);
      };
      t.send.cluster = "main";
      t.send.threads = 1;
      t.send.max_retries = 0;
      t.send.ask_have = true;
      t.fetch = RemoteSpec{Endpoint{"127.0.0.1", port}, tls, "main"};
      o.targets.push_back(std::move(t));
    }
    o.quorum = quorum;
    o.backlog = backlog_.get();
    o.note = [this](const std::string& m) {
      std::lock_guard lk(mu_);
      notes_ += m + "\n";
    };
    return o;
  }
  std::string File(const std::string& name, const std::string& content) {
    std::string p = dir_ + "/" + name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  // The raw content receiver i stores under `name`, or "<absent>".
  std::string Stored(int i, const std::string& name) {
    auto e = rcv_[i]->archive->Find("main", name);
    if (!e.ok()) return "<absent>";
    struct Collect final : ByteSink {
      std::string s;
      Status Write(std::span<const std::byte> d) override {
        s.append(reinterpret_cast<const char*>(d.data()), d.size());
        return Status::Ok();
      }
      Status Finish() override { return Status::Ok(); }
    } sink;
    if (!rcv_[i]->archive->Read(*e, sink).ok()) return "<unreadable>";
    return sink.s;
  }

  std::string dir_;
  std::vector<std::unique_ptr<Receiver>> rcv_;
  std::unique_ptr<Backlog> backlog_;
  std::mutex mu_;
  std::string notes_;
};

TEST_F(FanoutTest, AllUpQuorumAll) {
  auto o = Options(0);
  FanoutResult r;
  Status st = FanoutSendFile(o, File("a.bin", "alpha"), "a.bin", &r);
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(r.durable, 2u);
  EXPECT_EQ(Stored(0, "a.bin"), "alpha");
  EXPECT_EQ(Stored(1, "a.bin"), "alpha");
  EXPECT_TRUE(backlog_->Entries("r1")->empty());
}

TEST_F(FanoutTest, QuorumNotMetFailsAndRecordsNothing) {
  rcv_[1]->down = true;
  auto o = Options(2);
  Status st = FanoutSendFile(o, File("a.bin", "alpha"), "a.bin");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNetwork);
  EXPECT_NE(st.error().message().find("1 of 2 targets durable, quorum 2"), std::string::npos) << st.error().message();
  EXPECT_TRUE(backlog_->Entries("r1")->empty());
}

TEST_F(FanoutTest, MissedTargetIsCaughtUpByTheNextCall) {
  rcv_[1]->down = true;
  auto o = Options(1);
  ASSERT_TRUE(FanoutSendFile(o, File("a.bin", "alpha"), "a.bin").ok());
  ASSERT_TRUE(FanoutSendFile(o, File("b.bin", "beta"), "b.bin").ok());
  EXPECT_EQ(backlog_->Entries("r1")->size(), 2u);
  EXPECT_EQ(Stored(1, "a.bin"), "<absent>");
  EXPECT_FALSE(backlog_->State("r1")->reachable());
  rcv_[1]->down = false;
  FanoutResult r;
  ASSERT_TRUE(FanoutSendFile(o, File("c.bin", "gamma"), "c.bin", &r).ok());
  EXPECT_EQ(r.targets[1].drained, 2u);
  EXPECT_TRUE(backlog_->Entries("r1")->empty());
  EXPECT_EQ(Stored(1, "a.bin"), "alpha");
  EXPECT_EQ(Stored(1, "b.bin"), "beta");
  EXPECT_EQ(Stored(1, "c.bin"), "gamma");
  EXPECT_TRUE(backlog_->State("r1")->reachable());
}

TEST_F(FanoutTest, GoneSourceIsFetchedFromAPeer) {
  rcv_[1]->down = true;
  auto o = Options(1);
  std::string p = File("a.bin", "alpha from r0");
  ASSERT_TRUE(FanoutSendFile(o, p, "a.bin").ok());
  ::unlink(p.c_str());
  rcv_[1]->down = false;
  FanoutResult r = DrainBacklogs(o);
  EXPECT_EQ(r.targets[1].drained, 1u) << notes_;
  EXPECT_EQ(Stored(1, "a.bin"), "alpha from r0");
  EXPECT_TRUE(backlog_->Entries("r1")->empty());
}

TEST_F(FanoutTest, GoneEverywhereKeepsTheEntry) {
  rcv_[1]->down = true;
  auto o = Options(1);
  std::string p = File("a.bin", "alpha");
  ASSERT_TRUE(FanoutSendFile(o, p, "a.bin").ok());
  ::unlink(p.c_str());
  o.targets[0].fetch.reset();  // nobody to fetch from
  rcv_[1]->down = false;
  FanoutResult r = DrainBacklogs(o);
  EXPECT_EQ(r.targets[1].drained, 0u);
  EXPECT_EQ(r.targets[1].drain_failed, 1u);
  EXPECT_EQ(backlog_->Entries("r1")->size(), 1u);
  EXPECT_NE(notes_.find("entry kept"), std::string::npos) << notes_;
}

TEST_F(FanoutTest, ConflictOnOneTargetFailsDespiteQuorum) {
  auto single = Options(1);
  single.targets.erase(single.targets.begin());  // r1 alone
  ASSERT_TRUE(FanoutSendFile(single, File("a.bin", "other"), "a.bin").ok());
  auto o = Options(1);
  FanoutResult r;
  Status st = FanoutSendFile(o, File("a2.bin", "alpha"), "a.bin", &r);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kExistsDifferent) << st.error().message();
  EXPECT_EQ(r.durable, 1u);
  EXPECT_EQ(Stored(0, "a.bin"), "alpha");
  EXPECT_EQ(Stored(1, "a.bin"), "other");  // original kept
  EXPECT_TRUE(backlog_->Entries("r1")->empty());  // a conflict is not a miss
}

TEST_F(FanoutTest, FullBacklogFailsLoudly) {
  rcv_[1]->down = true;
  auto o = Options(1);
  for (const char* n : {"a.bin", "b.bin", "c.bin"}) ASSERT_TRUE(FanoutSendFile(o, File(n, n), n).ok());
  Status st = FanoutSendFile(o, File("d.bin", "d"), "d.bin");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNoSpace);
  EXPECT_EQ(Stored(0, "d.bin"), "d");  // durable on r0; the caller retries, nothing lost
  EXPECT_EQ(backlog_->Entries("r1")->size(), 3u);
}

TEST_F(FanoutTest, QuorumAboveTargetsIsAUsageError) {
  auto o = Options(3);
  Status st = FanoutSendFile(o, File("a.bin", "a"), "a.bin");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace walferry::pg
