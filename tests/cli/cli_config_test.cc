// Config file parser (cli/config.h): keys, values, comments, and the one-line
// kInvalidArgument refusals.
#include "cli/config.h"

#include <gtest/gtest.h>

#include <string>

namespace walferry::cli {
namespace {

TEST(Config, ParsesKeysValuesAndComments) {
  auto c = Config::Parse("# comment\n\nroot = /srv/wal\n--listen=127.0.0.1:5 # port\nname = \"a b\"\n", "t.conf");
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_NE(c->Find("root"), nullptr);
  EXPECT_EQ(*c->Find("root"), "/srv/wal");
  ASSERT_NE(c->Find("listen"), nullptr);
  EXPECT_EQ(*c->Find("listen"), "127.0.0.1:5");
  ASSERT_NE(c->Find("name"), nullptr);
  EXPECT_EQ(*c->Find("name"), "a b");
  EXPECT_EQ(c->Find("missing"), nullptr);
}

TEST(Config, MalformedLinesAreOneLineInvalidArgument) {
  for (const std::string& text : {std::string("root\n"), std::string(" = x\n"), std::string("a = 1\n= 2\n")}) {
    auto c = Config::Parse(text, "t.conf");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(c.error().message().find('\n'), std::string::npos);
  }
}

// config_fuzz crash-bb27201b42fe24d274f51034db8b30327adf8bc4: the key `--`
// was checked for emptiness before its `--` was removed, so it was stored as
// the empty key instead of being refused.
TEST(Config, DashDashAloneIsAnEmptyKey) {
  const std::string fuzz_input("#\n--=\0" "2l", 8);
  for (const std::string& text : {fuzz_input, std::string("-- = x\n"), std::string("  --   =\n")}) {
    auto c = Config::Parse(text, "t.conf");
    ASSERT_FALSE(c.ok()) << "accepted: " << text;
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(c.error().message().find("t.conf:"), std::string::npos) << c.error().message();
    EXPECT_NE(c.error().message().find("empty key"), std::string::npos) << c.error().message();
  }
}

}  // namespace
}  // namespace walferry::cli
