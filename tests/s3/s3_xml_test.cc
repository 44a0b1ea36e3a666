#include <gtest/gtest.h>

#include "s3/xml.h"

namespace walferry::s3 {
namespace {

TEST(S3Xml, ElementsAndText) {
  std::string x =
      "<?xml version=\"1.0\"?><ListBucketResult><Contents><Key>a&amp;b</Key><Size>3</Size></Contents>"
      "<Contents><Key>c</Key><Size>4</Size></Contents><IsTruncated>true</IsTruncated>"
      "<NextContinuationToken>t&#x2F;1</NextContinuationToken><KeyCount/></ListBucketResult>";
  auto c = XmlElements(x, "Contents");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(XmlText(c[0], "Key"), "a&b");
  EXPECT_EQ(XmlText(c[1], "Size"), "4");
  EXPECT_EQ(XmlText(x, "NextContinuationToken"), "t/1");
  EXPECT_EQ(XmlElements(x, "KeyCount").size(), 1u);
  EXPECT_EQ(XmlText(x, "Missing"), "");
}

TEST(S3Xml, PrefixOfAnotherTagIsNotIt) {
  std::string x = "<UploadId>u</UploadId><Upload><Key>k</Key></Upload>";
  ASSERT_EQ(XmlElements(x, "Upload").size(), 1u);
  EXPECT_EQ(XmlText(x, "UploadId"), "u");
}

TEST(S3Xml, MalformedGivesNothing) {
  EXPECT_TRUE(XmlElements("<Key>unterminated", "Key").empty());
  EXPECT_TRUE(XmlElements("<Key", "Key").empty());
  EXPECT_EQ(XmlDecode("&bogus; &#xD800; &#1114112; &#;"), "&bogus; &#xD800; &#1114112; &#;");
  EXPECT_EQ(XmlDecode("&lt;&gt;&quot;&apos;&#65;"), "<>\"'A");
  EXPECT_EQ(XmlEscape("<a&'\">"), "&lt;a&amp;&apos;&quot;&gt;");
}

}  // namespace
}  // namespace walferry::s3
