// SigV4 against AWS's published vectors: the Signature Version 4 test suite
// (service "service", 2015-08-30) and the S3 developer guide's examples.
#include <gtest/gtest.h>

#include "s3/sigv4.h"

namespace walferry::s3 {
namespace {

const std::string kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

Credentials SuiteCreds() { return {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "us-east-1", ""}; }

SignRequest Suite(std::string method, std::string path,
                  std::vector<std::pair<std::string, std::string>> query = {},
                  std::vector<std::pair<std::string, std::string>> extra = {}) {
  SignRequest r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  r.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  for (auto& h : extra) r.headers.push_back(h);
  r.payload_hash = kEmptySha;
  r.amz_date = "20150830T123600Z";
  r.service = "service";
  return r;
}

const std::string kScope = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, ";

TEST(SigV4Suite, GetVanilla) {
  auto r = Suite("GET", "/");
  EXPECT_EQ(CanonicalRequest(r, nullptr),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" + kEmptySha);
  EXPECT_EQ(StringToSign(r, SuiteCreds(), CanonicalRequest(r, nullptr)),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(Authorization(r, SuiteCreds()),
            kScope + "SignedHeaders=host;x-amz-date, "
                     "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Suite, PostVanilla) {
  EXPECT_EQ(Authorization(Suite("POST", "/"), SuiteCreds()),
            kScope + "SignedHeaders=host;x-amz-date, "
                     "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4Suite, QueryOrderKeyCase) {
  auto r = Suite("GET", "/", {{"Param2", "value2"}, {"Param1", "value1"}});
  EXPECT_EQ(CanonicalQuery(r.query), "Param1=value1&Param2=value2");
  EXPECT_EQ(Authorization(r, SuiteCreds()),
            kScope + "SignedHeaders=host;x-amz-date, "
                     "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

TEST(SigV4Suite, UnreservedPath) {
  auto r = Suite("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  EXPECT_EQ(Authorization(r, SuiteCreds()),
            kScope + "SignedHeaders=host;x-amz-date, "
                     "Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
}

TEST(SigV4Suite, HeaderValueTrim) {
  auto r = Suite("GET", "/", {}, {{"My-Header1", " value1"}, {"My-Header2", "\"a   b   c\""}});
  EXPECT_EQ(Authorization(r, SuiteCreds()),
            kScope + "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                     "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

TEST(SigV4Suite, PostHeaderValueCase) {
  auto r = Suite("POST", "/", {}, {{"My-Header1", "VALUE1"}});
  EXPECT_EQ(Authorization(r, SuiteCreds()),
            kScope + "SignedHeaders=host;my-header1;x-amz-date, "
                     "Signature=cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");
}

// S3 developer guide, "Signature Calculations for the Authorization Header":
// GET Object with a Range header.
TEST(SigV4S3, GetObjectExample) {
  Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", ""};
  SignRequest r;
  r.method = "GET";
  r.path = "/test.txt";
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Range", "bytes=0-9"},
               {"x-amz-content-sha256", kEmptySha},
               {"x-amz-date", "20130524T000000Z"}};
  r.payload_hash = kEmptySha;
  r.amz_date = "20130524T000000Z";
  EXPECT_EQ(Authorization(r, c),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

// Same guide: PUT Object, a key with '$' (encoded in the canonical URI).
TEST(SigV4S3, PutObjectExample) {
  Credentials c{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-1", ""};
  const std::string body = "Welcome to Amazon S3.";
  SignRequest r;
  r.method = "PUT";
  r.path = "/test$file.text";
  r.payload_hash = Sha256Hex(body);
  EXPECT_EQ(r.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
               {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
               {"x-amz-date", "20130524T000000Z"},
               {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
               {"x-amz-content-sha256", r.payload_hash}};
  r.amz_date = "20130524T000000Z";
  EXPECT_EQ(Authorization(r, c),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, "
            "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c+d=é", true), "a%20b/c%2Bd%3D%C3%A9");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(CanonicalQuery({{"uploads", ""}}), "uploads=");
}

TEST(SigV4, Md5Base64) {
  std::string s = "hello\n";
  EXPECT_EQ(Md5Base64(std::as_bytes(std::span(s.data(), s.size()))), "sZRqySSS0jR8YjW00mERhA==");
  EXPECT_EQ(AmzDate(1440938160), "20150830T123600Z");
}

}  // namespace
}  // namespace walferry::s3
