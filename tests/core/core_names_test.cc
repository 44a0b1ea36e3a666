// The one cluster-name rule (core/names.h), which the archive (directory
// names), the receiver (certificate CNs) and `tls init` all apply.
#include <gtest/gtest.h>

#include <string>

#include "core/names.h"

namespace walferry {
namespace {

TEST(CoreNames, ClusterNameRule) {
  const std::string longest(64, 'c');
  for (const char* ok : {"main", "db-1", "prod_eu.west", "A", "x.y", "a-", "9", longest.c_str()}) {
    EXPECT_TRUE(ValidateClusterName(ok).ok()) << ok;
  }
  const std::string bad[] = {"",       ".",   "..",  ".incoming", "-dash", "--force", "a/b",
                             "a b",    "x*",  "../x", std::string(65, 'c'), std::string("a\0b", 3),
                             "caf\xc3\xa9"};
  for (const auto& b : bad) {
    Status st = ValidateClusterName(b);
    ASSERT_FALSE(st.ok()) << b;
    EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
    EXPECT_NE(st.error().message().find("cluster name"), std::string::npos);
    EXPECT_EQ(st.error().message().find('\n'), std::string::npos);
  }
}

TEST(CoreNames, PrintableEscapesAndCuts) {
  EXPECT_EQ(Printable("plain"), "plain");
  EXPECT_EQ(Printable(std::string("a\nb\\", 4)), "a\\x0ab\\x5c");
  EXPECT_EQ(Printable(std::string(200, 'x')), std::string(80, 'x') + "...");
}

}  // namespace
}  // namespace walferry
