// `walferry setup primary --archive-module/--agent-socket` (the agent's
// PostgreSQL settings) and `walferry agent` argument errors, through the binary.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct Out {
  int rc;
  std::string out;
};
Out Wf(const std::string& args) {
  std::string cmd = std::string(WALFERRY_BIN) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf;
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class AgentCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wf-agent-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Pgdata(int v) {
    fs::path d = dir_ / ("pg" + std::to_string(v));
    fs::create_directories(d);
    std::ofstream(d / "PG_VERSION") << v << "\n";
    std::ofstream(d / "postgresql.conf") << "# test\n";
    std::ofstream(d / "pg_hba.conf") << "local all all trust\n";
    std::ofstream(d / "postgresql.auto.conf") << "archive_command = 'rsync -aq %p standby:/archive/%f'\n";
    return d;
  }
  fs::path dir_;
};

TEST_F(AgentCli, SetupPrimaryOffersTheArchiveModule) {
  fs::path d = Pgdata(15);
  Out o = Wf("setup primary --pgdata " + d.string() + " --archive-module --agent-socket /run/wf/agent.sock --apply");
  ASSERT_EQ(o.rc, 0) << o.out;
  std::ifstream f(d / "postgresql.auto.conf");
  std::string conf((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(conf.find("archive_library = 'walferry_archive'"), std::string::npos) << conf;
  EXPECT_NE(conf.find("walferry_archive.socket = '/run/wf/agent.sock'"), std::string::npos) << conf;
  EXPECT_NE(conf.find("archive_command = ''"), std::string::npos) << conf;
  EXPECT_EQ(conf.find("rsync"), std::string::npos) << conf;
}

TEST_F(AgentCli, ArchiveModuleNeeds15AndASocket) {
  EXPECT_NE(Wf("setup primary --pgdata " + Pgdata(14).string() + " --archive-module --agent-socket /s").rc, 0);
  Out o = Wf("setup primary --pgdata " + Pgdata(16).string() + " --archive-module");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.out.find("--agent-socket"), std::string::npos) << o.out;
}

TEST_F(AgentCli, AgentSocketGoesIntoTheArchiveCommand) {
  Out o = Wf("setup primary --pgdata " + Pgdata(13).string() + " --to h:7420 --agent-socket /run/wf/agent.sock");
  ASSERT_EQ(o.rc, 0) << o.out;
  EXPECT_NE(o.out.find("push %p --to h:7420 --agent-socket /run/wf/agent.sock"), std::string::npos) << o.out;
}

TEST_F(AgentCli, AgentArgumentErrorsAreUsageErrors) {
  EXPECT_EQ(Wf("agent --agent-socket /tmp/x.sock --to 127.0.0.1:1 --insecure-loopback").rc, 2);
  EXPECT_EQ(Wf("agent --pgdata /tmp --to 127.0.0.1:1 --insecure-loopback").rc, 2);
  Out o = Wf("agent --pgdata " + dir_.string() + " --agent-socket " + (dir_ / "run/a.sock").string() +
             " --to 127.0.0.1:1 --insecure-loopback");
  EXPECT_EQ(o.rc, 2) << o.out;  // not a data directory
  EXPECT_NE(o.out.find("archive_status"), std::string::npos) << o.out;
}

}  // namespace
