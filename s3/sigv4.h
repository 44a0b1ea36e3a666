// AWS Signature Version 4 for S3 requests, computed with OpenSSL (HMAC-SHA256,
// SHA-256, MD5). Written here rather than taken from libcurl's CURLOPT_AWS_SIGV4
// because that one needs hand-added x-amz-content-sha256 headers and orders
// some query strings differently from AWS (docs/s3.md says more).
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace walferry::s3 {

struct Credentials {
  std::string access_key;
  std::string secret_key;
  std::string region = "us-east-1";
  std::string session_token;  // sent as x-amz-security-token when set
};

struct SignRequest {
  std::string method;                                      // "GET", "PUT", ...
  std::string path;                                        // raw (unencoded) path, starting with '/'
  std::vector<std::pair<std::string, std::string>> query;  // raw names and values, any order
  std::vector<std::pair<std::string, std::string>> headers;  // must include host and x-amz-date
  std::string payload_hash;                                // hex SHA-256 or "UNSIGNED-PAYLOAD"
  std::string amz_date;                                    // "YYYYMMDDTHHMMSSZ"
  std::string service = "s3";
};

// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, everything
// else becomes %XX (upper case); '/' stays when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);
// "a=1&b=2" with names and values encoded and sorted by encoded name, then value.
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);
std::string CanonicalRequest(const SignRequest& r, std::string* signed_headers);
std::string StringToSign(const SignRequest& r, const Credentials& c, const std::string& canonical_request);
// The Authorization header value: "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
std::string Authorization(const SignRequest& r, const Credentials& c);

std::string Sha256Hex(std::span<const std::byte> data);
std::string Sha256Hex(std::string_view data);
std::string Md5Base64(std::span<const std::byte> data);
// "YYYYMMDDTHHMMSSZ" for a Unix time.
std::string AmzDate(long long unix_seconds);

}  // namespace walferry::s3
