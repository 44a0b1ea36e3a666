// `walferry tls init` as a user runs it: files and modes, one-line errors and
// exit codes, and that what it makes is accepted by Connect/Listen.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>

#include "transport/net.h"

namespace walferry::transport {
namespace {

namespace fs = std::filesystem;

struct CliRun {
  int code;
  std::string err;
};

CliRun Walferry(const std::string& args, const std::string& dir) {
  std::string errf = dir + "/stderr.txt";
  std::string cmd = std::string(WALFERRY_BIN) + " " + args + " >/dev/null 2>" + errf;
  int st = std::system(cmd.c_str());
  CliRun r{WIFEXITED(st) ? WEXITSTATUS(st) : 128, ""};
  FILE* f = std::fopen(errf.c_str(), "r");
  if (f) {
    char buf[4096];
    std::size_t n = std::fread(buf, 1, sizeof buf, f);
    r.err.assign(buf, n);
    std::fclose(f);
  }
  return r;
}

unsigned Mode(const std::string& p) {
  struct stat st;
  if (stat(p.c_str(), &st) != 0) return 0xFFFF;
  return st.st_mode & 07777;
}

class TlsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-tls-cli.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TlsCliTest, InitMakesFilesWithModes) {
  std::string d = dir_ + "/sub/tls";  // parents are created too
  CliRun r = Walferry("tls init " + d + " --cluster alpha --cluster beta --server-name standby.example", dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Mode(d), 0700u);
  for (const char* f : {"ca.key", "server.key", "client-alpha.key", "client-beta.key"}) {
    EXPECT_EQ(Mode(d + "/" + f), 0600u) << f;
  }
  for (const char* f : {"ca.crt", "server.crt", "client-alpha.crt", "client-beta.crt"}) {
    EXPECT_EQ(Mode(d + "/" + f), 0644u) << f;
  }
  EXPECT_FALSE(fs::exists(d + "/client-main.crt"));  // only the clusters asked for
}

TEST_F(TlsCliTest, DefaultClusterIsMainAndItConnects) {
  std::string d = dir_ + "/tls";
  CliRun r = Walferry("tls init " + d, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto l = Listen({"127.0.0.1", 0}, {d, "", false});
  ASSERT_TRUE(l.ok()) << l.error().message();
  std::optional<Result<std::unique_ptr<Conn>>> s;
  std::thread t([&] { s.emplace((*l)->Accept()); });
  auto c = Connect({"127.0.0.1", (*l)->port()}, {d, "", false});
  t.join();
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(s->ok()) << s->error().message();
  EXPECT_EQ((**s)->peer_cluster(), "main");
}

TEST_F(TlsCliTest, RefusesOverwriteWithoutForce) {
  std::string d = dir_ + "/tls";
  ASSERT_EQ(Walferry("tls init " + d, dir_).code, 0);
  auto before = fs::last_write_time(d + "/client-main.key");
  CliRun r = Walferry("tls init " + d, dir_);
  EXPECT_EQ(r.code, 10) << r.err;  // kExitExists
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(fs::last_write_time(d + "/client-main.key"), before);
  CliRun f = Walferry("tls init " + d + " --force", dir_);
  EXPECT_EQ(f.code, 0) << f.err;
}

TEST_F(TlsCliTest, BadClusterNamesAreUsageErrors) {
  for (const char* bad : {"../x", "a/b", ".hidden", "-dash", "\"a b\""}) {
    CliRun r = Walferry(std::string("tls init ") + dir_ + "/t --cluster " + bad, dir_);
    EXPECT_EQ(r.code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("cluster"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir_ + "/x.crt"));
}

TEST_F(TlsCliTest, MissingDirArgumentIsUsageError) {
  CliRun r = Walferry("tls init", dir_);
  EXPECT_EQ(r.code, 2) << r.err;
}

}  // namespace
}  // namespace walferry::transport
