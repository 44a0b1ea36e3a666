// S3 credentials (a file or the AWS_* variables) and s3://BUCKET/PREFIX URLs.
#include <cctype>
#include <cstdlib>
#include <fstream>

#include "core/bytes.h"
#include "s3/client_internal.h"

namespace walferry::s3 {

using internal::Lower;

Result<Credentials> LoadCredentials(const std::string& file) {
  Credentials c;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return Error(ErrorCode::kInvalidArgument, "cannot read S3 credentials file " + file);
    std::string line;
    while (std::getline(in, line)) {
      auto sep = line.find_first_of("=:");
      if (sep == std::string::npos || line[0] == '#' || line[0] == '[') continue;
      std::string k = Lower(Trim(line.substr(0, sep))), v(Trim(line.substr(sep + 1)));
      if (k == "aws_access_key_id" || k == "access_key_id") c.access_key = v;
      else if (k == "aws_secret_access_key" || k == "secret_access_key") c.secret_key = v;
      else if (k == "aws_session_token" || k == "session_token") c.session_token = v;
      else if (k == "region" || k == "aws_region") c.region = v;
    }
    if (c.access_key.empty() || c.secret_key.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "S3 credentials file " + file + " lacks aws_access_key_id or aws_secret_access_key");
    }
    return c;
  }
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (!env("AWS_REGION").empty()) c.region = env("AWS_REGION");
  else if (!env("AWS_DEFAULT_REGION").empty()) c.region = env("AWS_DEFAULT_REGION");
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use --s3-credentials FILE");
  }
  return c;
}

bool IsS3Url(std::string_view s) { return s.substr(0, 5) == "s3://"; }

Result<Location> ParseUrl(std::string_view url) {
  if (!IsS3Url(url)) return Error(ErrorCode::kInvalidArgument, "'" + std::string(url) + "' is not s3://BUCKET/PREFIX");
  std::string_view rest = url.substr(5);
  auto slash = rest.find('/');
  Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  std::string_view prefix = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  loc.prefix = std::string(prefix);
  bool ok = loc.bucket.size() >= 3 && loc.bucket.size() <= 63;
  for (char c : loc.bucket) ok = ok && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.');
  if (!ok) return Error(ErrorCode::kInvalidArgument, "bad S3 bucket name in '" + std::string(url) + "'");
  for (std::size_t i = 0; i < loc.prefix.size(); ++i) {
    auto c = static_cast<unsigned char>(loc.prefix[i]);
    if (c < 0x20 || c == 0x7f || (c == '/' && i + 1 < loc.prefix.size() && loc.prefix[i + 1] == '/')) {
      return Error(ErrorCode::kInvalidArgument, "bad S3 prefix in '" + std::string(url) + "'");
    }
  }
  if (loc.prefix.find("..") != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "bad S3 prefix in '" + std::string(url) + "' (no '..')");
  }
  return loc;
}

}  // namespace walferry::s3
