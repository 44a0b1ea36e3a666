// pg::Child (issue 8, point 3): Kill() must kill and reap the child before the
// pipe to it closes, so that a child reading the pipe (a `walferry send -`
// fed by `walferry basebackup`) never sees a clean EOF while it still runs.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "pg/process.h"

namespace walferry::pg {
namespace {

std::string ReadFile(const std::string& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  return s;
}

bool WaitForFile(const std::string& p) {
  for (int i = 0; i < 2000; ++i) {
    if (std::filesystem::exists(p) && !ReadFile(p).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

// The child (python) forks an observer that shares the child's stdin: the
// observer reads the pipe to EOF and then records whether the child still
// existed at that moment (alive or not yet reaped). With kill-wait-close the
// child is always gone first; with close-then-kill the observer sees EOF while
// the child exists in most runs, so a few dozen rounds catch the wrong order.
TEST(Child, KillReapsBeforeThePipeCloses) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "python3 not installed";
  char tmpl[] = "/tmp/wf-process-test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const char* script =
      "import os, sys, signal\n"
      "parent = os.getpid()\n"
      "if os.fork() == 0:\n"
      "    open(sys.argv[1] + '.ready', 'w').write('1')\n"
      "    while os.read(0, 65536):\n"
      "        pass\n"
      "    try:\n"
      "        os.kill(parent, 0)\n"
      "        seen = 'child-alive-at-eof'\n"
      "    except ProcessLookupError:\n"
      "        seen = 'child-gone-at-eof'\n"
      "    open(sys.argv[1], 'w').write(seen)\n"
      "    os._exit(0)\n"
      "signal.pause()\n";
  int alive = 0;
  const int kRounds = 30;
  for (int i = 0; i < kRounds; ++i) {
    const std::string mark = dir + "/mark" + std::to_string(i);
    auto c = Child::Spawn({"/usr/bin/python3", "-c", script, mark}, Child::PipeEnd::kToChild);
    ASSERT_TRUE(c.ok()) << c.error().message();
    ASSERT_TRUE(WaitForFile(mark + ".ready"));
    c->Kill();
    ASSERT_TRUE(WaitForFile(mark)) << "observer never saw EOF";
    const std::string seen = ReadFile(mark);
    EXPECT_TRUE(seen == "child-gone-at-eof" || seen == "child-alive-at-eof") << seen;
    if (seen == "child-alive-at-eof") ++alive;
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(alive, 0) << alive << " of " << kRounds << " rounds: the pipe closed while the child still ran";
}

// Wait() still closes the pipe first (a child reading it to EOF exits on its own).
TEST(Child, WaitClosesThePipeAndReturnsTheExitCode) {
  auto c = Child::Spawn({"/bin/sh", "-c", "cat >/dev/null; exit 7"}, Child::PipeEnd::kToChild);
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto rc = c->Wait();
  ASSERT_TRUE(rc.ok());
  EXPECT_EQ(*rc, 7);
}

}  // namespace
}  // namespace walferry::pg
