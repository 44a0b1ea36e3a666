// Name validation and classification, cluster names, store formats.
#include <gtest/gtest.h>

#include <string>

#include "archive/archive.h"
#include "walfmt/wal_names.h"

namespace walferry::archive {
namespace {

using walfmt::IsWalSegmentName;

TEST(ArchiveNames, ClassifiesWalNames) {
  for (const char* n : {"000000010000000000000001", "00000002000000A1000000FF",
                        "FFFFFFFFFFFFFFFFFFFFFFFF", "00000002.history",
                        "000000010000000000000003.00000028.backup",
                        "000000010000000000000009.partial"}) {
    auto k = ClassifyName(n);
    ASSERT_TRUE(k.ok()) << n << ": " << k.error().message();
    EXPECT_EQ(*k, EntryKind::kWal) << n;
  }
}

TEST(ArchiveNames, ClassifiesOtherNamesAsFiles) {
  const std::string long_name(255, 'a');
  for (const char* n : {"base.tar", "base-2026-11-25.tar.zst", "0000000100000000000000011",
                        "00000001000000000000000", "000000010000000000000001x",
                        "00000001000000000000000a",  // lower case is not a segment name
                        "a", "a.b.c", "history", "x.historyx", "name with spaces", "\xc3\xa9t\xc3\xa9",
                        long_name.c_str()}) {
    auto k = ClassifyName(n);
    ASSERT_TRUE(k.ok()) << n << ": " << k.error().message();
    EXPECT_EQ(*k, EntryKind::kFile) << n;
  }
}

TEST(ArchiveNames, RefusesDangerousNames) {
  const std::string cases[] = {
      "",
      ".",
      "..",
      "../etc/passwd",
      "a/b",
      "/abs",
      "a/",
      ".hidden",
      ".history",
      "a..b",
      "..a",
      std::string("a\0b", 3),
      std::string("\0", 1),
      "tab\there",
      "new\nline",
      "cr\r",
      "esc\x1b[0m",
      "del\x7f",
      std::string(256, 'a'),
      std::string(1000, 'b'),
  };
  for (const auto& n : cases) {
    auto k = ClassifyName(n);
    EXPECT_FALSE(k.ok()) << "accepted: " << n;
    if (!k.ok()) {
      EXPECT_EQ(k.error().code(), ErrorCode::kRefused);
      // One line, whatever the name contained.
      EXPECT_EQ(k.error().message().find('\n'), std::string::npos) << k.error().message();
      EXPECT_EQ(k.error().message().find('\0'), std::string::npos);
    }
  }
}

TEST(ArchiveNames, EveryByteValueInAName) {
  for (int c = 0; c < 256; ++c) {
    std::string n = "ab";
    n += static_cast<char>(c);
    n += "cd";
    auto k = ClassifyName(n);
    bool should_refuse = c < 0x20 || c == 0x7f || c == '/';
    EXPECT_EQ(!k.ok(), should_refuse) << "byte " << c;
  }
}

TEST(ArchiveNames, WalSegmentNamePattern) {
  EXPECT_TRUE(IsWalSegmentName("000000010000000000000001"));
  EXPECT_TRUE(IsWalSegmentName("0123456789ABCDEF01234567"));
  EXPECT_FALSE(IsWalSegmentName("0123456789abcdef01234567"));
  EXPECT_FALSE(IsWalSegmentName("00000001000000000000000G"));
  EXPECT_FALSE(IsWalSegmentName("00000001000000000000001"));
  EXPECT_FALSE(IsWalSegmentName("0000000100000000000000011"));
  EXPECT_FALSE(IsWalSegmentName(""));
  EXPECT_FALSE(IsWalSegmentName("000000010000000000000001.partial"));
}

TEST(ArchiveNames, ClusterNames) {
  const std::string longest(64, 'c');
  for (const char* ok : {"main", "db-1", "prod_eu.west", "A", "x.y", longest.c_str()}) {
    EXPECT_TRUE(ValidateClusterName(ok).ok()) << ok;
  }
  const std::string bad[] = {"", ".", "..", ".incoming", "a/b", "a b", "a\nb", std::string("a\0b", 3),
                             std::string(65, 'c'), "caf\xc3\xa9", "x*", "../x"};
  for (const auto& b : bad) {
    auto st = ValidateClusterName(b);
    EXPECT_FALSE(st.ok()) << b;
    if (!st.ok()) {
      EXPECT_EQ(st.error().code(), ErrorCode::kRefused);
    }
  }
}

TEST(ArchiveNames, StoreFormats) {
  EXPECT_EQ(*ParseStoreFormat("zstd"), StoreFormat::kZstd);
  EXPECT_EQ(*ParseStoreFormat("gzip"), StoreFormat::kGzip);
  EXPECT_EQ(*ParseStoreFormat("raw"), StoreFormat::kRaw);
  auto bad = ParseStoreFormat("lz4");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(StoreSuffix(StoreFormat::kZstd), ".zst");
  EXPECT_EQ(StoreSuffix(StoreFormat::kGzip), ".gz");
  EXPECT_EQ(StoreSuffix(StoreFormat::kRaw), "");
  EXPECT_EQ(StoreAlgorithm(StoreFormat::kZstd), compress::Algorithm::kZstd);
  EXPECT_EQ(StoreAlgorithm(StoreFormat::kGzip), compress::Algorithm::kGzip);
  EXPECT_EQ(StoreAlgorithm(StoreFormat::kRaw), compress::Algorithm::kRaw);
}

}  // namespace
}  // namespace walferry::archive
