// `walferry setup primary --archive-module/--agent-socket` (the agent's
// PostgreSQL settings) and `walferry agent` argument errors, through the binary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;

using walferry::cli_test::CliOut;
using walferry::cli_test::ReadText;
using walferry::cli_test::RunWalferry;

class AgentCli : public walferry::cli_test::ScratchDirTest {
 protected:
  AgentCli() : ScratchDirTest("wf-agent-cli") {}
  fs::path Pgdata(int v) { return FakePgdata("pg" + std::to_string(v), v); }
};

TEST_F(AgentCli, SetupPrimaryOffersTheArchiveModule) {
  fs::path d = Pgdata(15);
  CliOut o = RunWalferry("setup primary --pgdata " + d.string() + " --archive-module --agent-socket /run/wf/agent.sock --apply");
  ASSERT_EQ(o.rc, 0) << o.out;
  std::ifstream f(d / "postgresql.auto.conf");
  std::string conf((std::istreambuf_iterator<char>(f)), {});
  EXPECT_NE(conf.find("archive_library = 'walferry_archive'"), std::string::npos) << conf;
  EXPECT_NE(conf.find("walferry_archive.socket = '/run/wf/agent.sock'"), std::string::npos) << conf;
  EXPECT_NE(conf.find("archive_command = ''"), std::string::npos) << conf;
  EXPECT_EQ(conf.find("rsync"), std::string::npos) << conf;
}

TEST_F(AgentCli, ArchiveModuleNeeds15AndASocket) {
  EXPECT_NE(RunWalferry("setup primary --pgdata " + Pgdata(14).string() + " --archive-module --agent-socket /s").rc, 0);
  CliOut o = RunWalferry("setup primary --pgdata " + Pgdata(16).string() + " --archive-module");
  EXPECT_NE(o.rc, 0);
  EXPECT_NE(o.out.find("--agent-socket"), std::string::npos) << o.out;
}

TEST_F(AgentCli, AgentSocketGoesIntoTheArchiveCommand) {
  CliOut o = RunWalferry("setup primary --pgdata " + Pgdata(13).string() + " --to h:7420 --agent-socket /run/wf/agent.sock");
  ASSERT_EQ(o.rc, 0) << o.out;
  EXPECT_NE(o.out.find("push %p --to h:7420 --agent-socket /run/wf/agent.sock"), std::string::npos) << o.out;
}

TEST_F(AgentCli, AgentArgumentErrorsAreUsageErrors) {
  EXPECT_EQ(RunWalferry("agent --agent-socket /tmp/x.sock --to 127.0.0.1:1 --insecure-loopback").rc, 2);
  EXPECT_EQ(RunWalferry("agent --pgdata /tmp --to 127.0.0.1:1 --insecure-loopback").rc, 2);
  CliOut o = RunWalferry("agent --pgdata " + dir_.string() + " --agent-socket " + (dir_ / "run/a.sock").string() +
             " --to 127.0.0.1:1 --insecure-loopback");
  EXPECT_EQ(o.rc, 2) << o.out;  // not a data directory
  EXPECT_NE(o.out.find("archive_status"), std::string::npos) << o.out;
}

}  // namespace
