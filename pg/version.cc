#include "pg/version.h"

#include <cctype>
#include <string>

#include "core/bytes.h"
#include "core/fd.h"

namespace walferry::pg {
namespace {

// Leading decimal number of `s`, or -1.
long LeadingNumber(std::string_view s, std::size_t* used = nullptr) {
  long v = 0;
  std::size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i < 9) {
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  if (used) *used = i;
  return i == 0 ? -1 : v;
}

}  // namespace

Result<int> ParseMajorVersion(std::string_view text) {
  std::string_view t = Trim(text);
  std::size_t used = 0;
  long v = LeadingNumber(t, &used);
  if (v <= 0) return Error(ErrorCode::kInvalidArgument, "not a PostgreSQL version: " + std::string(t));
  t.remove_prefix(used);
  if (!t.empty() && t.front() != '.') {
    return Error(ErrorCode::kInvalidArgument, "not a PostgreSQL version: " + std::string(Trim(text)));
  }
  return static_cast<int>(v);
}

Result<int> MajorFromVersionNum(std::string_view text) {
  std::string_view t = Trim(text);
  std::size_t used = 0;
  long v = LeadingNumber(t, &used);
  if (v < 90000 || used != t.size()) {
    return Error(ErrorCode::kInvalidArgument, "not a server_version_num: " + std::string(t));
  }
  return static_cast<int>(v / 10000);  // 150004 -> 15, 90624 -> 9
}

Result<int> MajorFromVersionOutput(std::string_view text) {
  auto pos = text.find("PostgreSQL");
  if (pos == std::string_view::npos) {
    return Error(ErrorCode::kInvalidArgument, "not a PostgreSQL version line: " + std::string(Trim(text)));
  }
  std::string_view rest = text.substr(pos + 10);
  if (!rest.empty() && rest.front() == ')') rest.remove_prefix(1);
  rest = Trim(rest);
  return ParseMajorVersion(rest.substr(0, rest.find_first_of(" \t\n(")));
}

Status CheckSupported(int major) {
  if (major < kMinMajor || major > kMaxMajor) {
    return Error(ErrorCode::kUnsupported, "PostgreSQL " + std::to_string(major) +
                                              " is not supported (walferry supports 10..17)");
  }
  return Status::Ok();
}

Result<int> DetectMajorVersion(const std::string& pgdata) {
  auto text = ReadSmallFile(pgdata + "/PG_VERSION", 64);
  if (!text.ok()) {
    if (text.error().code() == ErrorCode::kNotFound) {
      return Error(ErrorCode::kNotFound,
                   pgdata + " is not a PostgreSQL data directory (no PG_VERSION)");
    }
    return text.error();
  }
  auto major = ParseMajorVersion(*text);
  if (!major.ok()) return major.error().Wrap(pgdata + "/PG_VERSION");
  return major;
}

}  // namespace walferry::pg
