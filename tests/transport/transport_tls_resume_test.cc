// TLS 1.3 session resumption (TlsConfig::session_file, transport/tls_session.h)
// over real sockets on 127.0.0.1 with certificates from InitTlsDir.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "transport/net.h"
#include "transport/tls_session.h"

namespace walferry::transport {
namespace {

namespace fs = std::filesystem;

class TlsResumeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-resume-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    Status st = InitTlsDir(root_ + "/tls", {"main"}, {}, false);
    ASSERT_TRUE(st.ok()) << st.error().message();
    TlsConfig server;
    server.tls_dir = root_ + "/tls";
    auto l = Listen({"127.0.0.1", 0}, server);
    ASSERT_TRUE(l.ok()) << l.error().message();
    listener_ = std::move(l).value();
  }
  void TearDown() override {
    listener_->Close();
    fs::remove_all(root_);
  }

  // Connects once with `session_file`; returns whether the handshake resumed
  // and the cluster the server saw (empty on failure).
  std::pair<bool, std::string> ConnectOnce(const std::string& session_file) {
    std::optional<Result<std::unique_ptr<Conn>>> accepted;
    std::thread t([&] { accepted.emplace(listener_->Accept()); });
    TlsConfig cfg;
    cfg.tls_dir = root_ + "/tls";
    cfg.cluster = "main";
    cfg.session_file = session_file;
    auto c = Connect({"127.0.0.1", listener_->port()}, cfg);
    t.join();
    EXPECT_TRUE(c.ok()) << c.error().message();
    EXPECT_TRUE(accepted->ok());
    if (!c.ok() || !accepted->ok()) return {false, ""};
    return {(*c)->tls_resumed(), (**accepted)->peer_cluster()};
  }

  std::string root_;
  std::unique_ptr<Listener> listener_;
};

TEST_F(TlsResumeTest, SecondConnectionResumesAndKeepsTheClientIdentity) {
  std::string file = root_ + "/cache/walferry/sess";
  auto first = ConnectOnce(file);
  EXPECT_FALSE(first.first);
  EXPECT_EQ(first.second, "main");
  struct stat st{};
  ASSERT_EQ(::stat(file.c_str(), &st), 0) << "no session file written";
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((root_ + "/cache/walferry").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  auto second = ConnectOnce(file);
  EXPECT_TRUE(second.first) << "the cached session was not resumed";
  EXPECT_EQ(second.second, "main") << "a resumed session must carry the client certificate's cluster";
  auto third = ConnectOnce(file);
  EXPECT_TRUE(third.first);
}

TEST_F(TlsResumeTest, NoFileNoResumption) {
  EXPECT_FALSE(ConnectOnce("").first);
  EXPECT_FALSE(ConnectOnce("").first);
}

TEST_F(TlsResumeTest, FileReadableByOthersIsIgnored) {
  std::string file = root_ + "/c/sess";
  ConnectOnce(file);
  ASSERT_EQ(::chmod(file.c_str(), 0644), 0);
  EXPECT_FALSE(ConnectOnce(file).first) << "a session file readable by others must not be trusted";
}

TEST_F(TlsResumeTest, DirectoryOpenToOthersIsIgnored) {
  std::string dir = root_ + "/open";
  fs::create_directory(dir);
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  ConnectOnce(dir + "/sess");
  struct stat st{};
  EXPECT_NE(::stat((dir + "/sess").c_str(), &st), 0) << "a secret written into a directory others can read";
  EXPECT_FALSE(ConnectOnce(dir + "/sess").first);
}

TEST_F(TlsResumeTest, CorruptFileFallsBackToAFullHandshake) {
  std::string file = root_ + "/c/sess";
  ConnectOnce(file);
  {
    std::ofstream f(file, std::ios::trunc | std::ios::binary);
    f << "not a session";
  }
  auto r = ConnectOnce(file);
  EXPECT_FALSE(r.first);
  EXPECT_EQ(r.second, "main");
  EXPECT_TRUE(ConnectOnce(file).first) << "the fresh ticket replaced the corrupt file";
}

TEST_F(TlsResumeTest, DefaultFileLivesUnderTheCacheHome) {
  setenv("XDG_CACHE_HOME", "/x/cache", 1);
  EXPECT_EQ(DefaultSessionFile("10.0.0.1", 7420, "main"), "/x/cache/walferry/tls-sessions/10.0.0.1_7420_main");
  EXPECT_EQ(DefaultSessionFile("::1", 7, ""), "/x/cache/walferry/tls-sessions/__1_7_default");
  unsetenv("XDG_CACHE_HOME");
}

}  // namespace
}  // namespace walferry::transport
