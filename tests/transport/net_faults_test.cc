// transport/net.h through tests/tools/fault_proxy.py: cuts, truncation,
// flipped bytes and stalls during and after the TLS handshake. A damaged
// connection must fail as kNetwork (retryable), never as a certificate
// refusal, never hang, and never deliver different bytes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transport/net.h"

namespace walferry::transport {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

class Proxy {
 public:
  Proxy(const std::string& dir, int target, std::vector<std::string> args) {
    std::string port_file = dir + "/proxy.port";
    fs::remove(port_file);
    std::vector<std::string> argv = {"python3",
                                     std::string(WALFERRY_SOURCE_DIR) + "/tests/tools/fault_proxy.py",
                                     "--target",
                                     "127.0.0.1:" + std::to_string(target),
                                     "--port-file",
                                     port_file,
                                     "--log",
                                     dir + "/proxy.log",
                                     "--lifetime",
                                     "60"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      execvp("python3", a.data());
      _exit(127);
    }
    for (int i = 0; i < 800 && port_ == 0; ++i) {  // up to 20 s on a loaded machine
      std::ifstream f(port_file);
      int p = 0;
      if (f >> p) port_ = p;
      else std::this_thread::sleep_for(milliseconds(25));
    }
  }
  ~Proxy() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class NetFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-net-faults.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Status st = InitTlsDir(dir_ + "/tls", {"main"}, {}, false);
    ASSERT_TRUE(st.ok()) << st.error().message();
    auto l = Listen({"127.0.0.1", 0}, {dir_ + "/tls", "", false});
    ASSERT_TRUE(l.ok()) << l.error().message();
    listener_ = std::move(l).value();
    server_ = std::thread([this] { Serve(); });
  }
  void TearDown() override {
    listener_->Close();
    server_.join();
    fs::remove_all(dir_);
  }

  // Echo server: one thread per connection echoes everything back; refused
  // handshakes are counted by error code.
  void Serve() {
    std::vector<std::thread> conns;
    for (;;) {
      auto c = listener_->Accept();
      if (!c.ok()) {
        if (c.error().message() == "listener closed") break;
        continue;
      }
      conns.emplace_back([conn = std::shared_ptr<Conn>(std::move(c).value())] {
        conn->SetTimeout(milliseconds(5000));
        std::vector<std::byte> buf(1 << 16);
        for (;;) {
          auto n = conn->ReadSome(buf);
          if (!n.ok() || *n == 0) return;
          if (!conn->WriteAll(std::span(buf.data(), *n)).ok()) return;
        }
      });
    }
    for (auto& t : conns) t.join();
  }

  // Connects through the proxy and echoes `payload` in 16 KiB steps (write a
  // piece, read it back: one thread, as the Conn contract requires). Returns
  // the error of the first failing step, or nullopt when everything
  // round-tripped intact.
  std::optional<Error> EchoThrough(int port, const std::string& payload,
                                   milliseconds timeout = milliseconds(5000)) {
    auto c = Connect({"127.0.0.1", port}, {dir_ + "/tls", "", false});
    if (!c.ok()) return c.error();
    (*c)->SetTimeout(timeout);
    std::string back;
    for (std::size_t off = 0; off < payload.size(); off += 16384) {
      std::size_t n = std::min<std::size_t>(16384, payload.size() - off);
      Status st = (*c)->WriteAll(std::as_bytes(std::span(payload.data() + off, n)));
      if (!st.ok()) return st.error();
      std::string piece(n, '\0');
      st = (*c)->ReadExact(std::as_writable_bytes(std::span(piece.data(), n)));
      if (!st.ok()) return st.error();
      back += piece;
    }
    EXPECT_TRUE(back == payload) << "echo returned different bytes";
    return std::nullopt;
  }

  std::string dir_;
  std::unique_ptr<Listener> listener_;
  std::thread server_;
};

std::string Payload(std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = 12345;
  for (auto& ch : s) {
    x = x * 1103515245 + 12345;
    ch = static_cast<char>(x >> 24);
  }
  return s;
}

TEST_F(NetFaultsTest, PassThroughWorks) {
  Proxy p(dir_, listener_->port(), {"--mode", "pass"});
  ASSERT_NE(p.port(), 0) << "fault proxy did not start";
  auto err = EchoThrough(p.port(), Payload(3 << 20));
  EXPECT_FALSE(err) << err->message();
}

void ExpectRetryable(const Error& e) {
  EXPECT_EQ(e.code(), ErrorCode::kNetwork) << ErrorCodeName(e.code()) << ": " << e.message();
}

TEST_F(NetFaultsTest, CutsAnywhereAreNetworkErrors) {
  for (const char* dir : {"c2s", "s2c"}) {
    for (const char* mode : {"cut", "truncate"}) {
      // Every connection is cut at a random point in the first ~4 KB, which
      // covers the whole handshake and the start of the data.
      Proxy p(dir_, listener_->port(),
              {"--mode", mode, "--dir", dir, "--after", "0:4000", "--seed", "5"});
      ASSERT_NE(p.port(), 0) << "fault proxy did not start";
      int failed = 0;
      for (int i = 0; i < 12; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        auto err = EchoThrough(p.port(), Payload(8192), milliseconds(3000));
        if (getenv("WF_DEBUG")) {
          fprintf(stderr, "%s %s %d: %lld ms: %s\n", mode, dir, i,
                  (long long)std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count(),
                  err ? err->message().c_str() : "ok");
        }
        if (err) {
          ++failed;
          ExpectRetryable(*err);
        }
      }
      EXPECT_GT(failed, 0) << mode << " " << dir << ": no connection was damaged";
    }
  }
}

TEST_F(NetFaultsTest, FlippedDataBytesNeverDeliverWrongBytes) {
  for (const char* dir : {"c2s", "s2c"}) {
    // Flips after the handshake (well past the first 2 KB): TLS must refuse
    // the record; the echo never returns different bytes (checked in EchoThrough).
    Proxy p(dir_, listener_->port(),
            {"--mode", "flip", "--dir", dir, "--after", "3000:60000", "--seed", "9"});
    ASSERT_NE(p.port(), 0) << "fault proxy did not start";
    for (int i = 0; i < 6; ++i) {
      auto err = EchoThrough(p.port(), Payload(65536), milliseconds(3000));
      ASSERT_TRUE(err) << dir << ": a flipped byte went unnoticed";
      ExpectRetryable(*err);
    }
  }
}

TEST_F(NetFaultsTest, StalledConnectionTimesOut) {
  Proxy p(dir_, listener_->port(),
          {"--mode", "stall", "--dir", "s2c", "--after", "3000", "--seconds", "20"});
  ASSERT_NE(p.port(), 0) << "fault proxy did not start";
  auto err = EchoThrough(p.port(), Payload(200000), milliseconds(1000));
  ASSERT_TRUE(err) << "the echo went through a 20 s stall";
  ExpectRetryable(*err);
  EXPECT_NE(err->message().find("timed out"), std::string::npos) << err->message();
}

}  // namespace
}  // namespace walferry::transport
