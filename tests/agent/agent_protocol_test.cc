// The agent's socket protocol (agent/protocol.h) and its refusals; the agent
// itself over a real unix socket: socket permissions, a client of the right
// uid, an answer for a file it cannot read, STATUS and PING.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/agent.h"
#include "agent/protocol.h"

namespace walferry::agent {
namespace {

namespace fs = std::filesystem;
using internal::ParseAnswer;
using internal::ParsePushRequest;

TEST(AgentProtocol, PushRequestParses) {
  auto r = ParsePushRequest("PUSH 000000010000000000000001 /data/pg_wal/000000010000000000000001");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->name, "000000010000000000000001");
  EXPECT_EQ(r->path, "/data/pg_wal/000000010000000000000001");
  auto spaced = ParsePushRequest("PUSH 00000002.history /my data/pg_wal/00000002.history");
  ASSERT_TRUE(spaced.ok());
  EXPECT_EQ(spaced->path, "/my data/pg_wal/00000002.history");
}

TEST(AgentProtocol, PushRequestRefusesBadNamesAndRelativePaths) {
  for (const char* bad : {"PUSH", "PUSH x", "PUSH ../x /a", "PUSH a/b /a", "PUSH .. /a", "PUSH . /a",
                          "PUSH x relative/path", "PUSH x ", "push x /a", "GET x /a"}) {
    EXPECT_FALSE(ParsePushRequest(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParsePushRequest(std::string_view("PUSH x /a\0b", 11)).ok());
}

TEST(AgentProtocol, AnswersParse) {
  for (const char* ok : {"OK placed", "OK identical", "OK durable"}) {
    auto a = ParseAnswer(ok);
    ASSERT_TRUE(a.ok()) << ok;
    EXPECT_TRUE(a->ok);
  }
  auto e = ParseAnswer("ERR 4 push x: exists with different content");
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->ok);
  EXPECT_EQ(e->code, ErrorCode::kExistsDifferent);
  EXPECT_EQ(e->message, "push x: exists with different content");
  for (const char* bad : {"OK", "OK maybe", "ERR", "ERR 0 ok?", "ERR 99 x", "ERR x y", "ERR 4", "DONE", ""}) {
    EXPECT_FALSE(ParseAnswer(bad).ok()) << bad;
  }
}

TEST(AgentProtocol, FormatErrorIsOneParsableLine) {
  std::string line = internal::FormatError(Error(ErrorCode::kNoSpace, "disk full\non the receiver"));
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto a = ParseAnswer(line);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->code, ErrorCode::kNoSpace);
}

class AgentSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wf-agent-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    fs::create_directories(root_ + "/pgdata/pg_wal/archive_status");
  }
  void TearDown() override { fs::remove_all(root_); }
  AgentOptions Options(const std::string& socket) {
    AgentOptions o;
    o.pgdata = root_ + "/pgdata";
    o.socket_path = socket;
    // A receiver that never answers: these tests do not ship anything.
    o.send.connect = []() -> Result<std::unique_ptr<transport::Conn>> {
      return Error(ErrorCode::kNetwork, "no receiver in this test");
    };
    o.send.max_retries = 0;
    return o;
  }
  std::string root_;
};

TEST_F(AgentSocket, RefusesASocketDirectoryOthersCanReach) {
  fs::create_directory(root_ + "/open");
  ::chmod((root_ + "/open").c_str(), 0755);
  auto a = Agent::Start(Options(root_ + "/open/agent.sock"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().code(), ErrorCode::kAuth);
}

TEST_F(AgentSocket, RefusesADataDirectoryWithoutArchiveStatus) {
  auto o = Options(root_ + "/run/agent.sock");
  o.pgdata = root_;
  EXPECT_FALSE(Agent::Start(o).ok());
}

TEST_F(AgentSocket, ServesStatusPingAndReportsUnreadableFiles) {
  std::string sock = root_ + "/run/agent.sock";
  auto a = Agent::Start(Options(sock));
  ASSERT_TRUE(a.ok()) << a.error().message();
  struct stat st{};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((root_ + "/run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  std::thread run([&] { (void)(*a)->Run(); });
  auto s = AskStatus(sock, std::chrono::seconds(10));
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ(s->at("pid"), std::to_string(::getpid()));
  EXPECT_EQ(s->at("shipped_files"), "0");
  EXPECT_EQ(s->at("last_error"), "-");
  auto p = AskPush(sock, "000000010000000000000001", root_ + "/missing", std::chrono::seconds(10));
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_FALSE(p->ok);
  EXPECT_EQ(p->code, ErrorCode::kNotFound);
  // A file that cannot reach the receiver: the agent answers the network error, never OK.
  std::ofstream(root_ + "/seg") << "not really WAL";
  auto n = AskPush(sock, "000000010000000000000002", root_ + "/seg", std::chrono::seconds(30));
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_FALSE(n->ok);
  EXPECT_EQ(n->code, ErrorCode::kNetwork);
  auto s2 = AskStatus(sock, std::chrono::seconds(10));
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->at("failures"), "1");
  EXPECT_NE(s2->at("last_error").find("000000010000000000000002"), std::string::npos);
  // A second agent on the same socket is refused while the first lives.
  auto second = Agent::Start(Options(sock));
  EXPECT_FALSE(second.ok());
  (*a)->Stop();
  run.join();
  EXPECT_FALSE(AskPush(sock, "x", "/x", std::chrono::seconds(1)).ok()) << "answered after Stop";
}

TEST(AgentClient, NothingListeningIsNotFound) {
  auto r = AskPush("/tmp/wf-no-such-agent.sock", "x", "/x", std::chrono::seconds(1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace walferry::agent
