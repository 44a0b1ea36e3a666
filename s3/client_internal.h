// What the S3 client's files share (http.cc: one signed request on libcurl
// and the retries; client.cc: the S3 operations; credentials.cc: credentials
// and s3:// URLs); only s3/ includes this.
#pragma once

#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "s3/client.h"

namespace walferry::s3 {

struct Client::Request {
  std::string op;      // for messages: "PUT wal/000...1"
  std::string method;  // GET PUT POST DELETE HEAD
  std::string key;     // "" = the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::span<const std::byte> body;
  bool body_md5 = true;
};

struct Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

namespace internal {

// The one place where HTTP statuses and S3 error codes become walferry errors.
Error HttpError(const std::string& op, long status, const std::string& body);
// A status or S3 error code worth another attempt (throttling, 5xx).
bool Retryable(long status, const std::string& code);

std::string Lower(std::string_view s);
// `s` without surrounding double quotes (ETags).
std::string Unquote(std::string s);
// A decimal number, 0 when there is none.
std::uint64_t ToU64(std::string_view s);

}  // namespace internal
}  // namespace walferry::s3
