// The one HTTP request the metrics endpoint understands: the request line of
// "GET /metrics HTTP/1.x". Header-only so that a fuzz target
// (fuzz/http_request_fuzz.cc) can reach it without the cli binary.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace walferry::cli {

enum class HttpParse { kIncomplete, kBad, kOk };

struct HttpRequestLine {
  std::string method;
  std::string path;  // without a query string
};

inline constexpr std::size_t kMaxHttpRequest = 8192;

// Parses the start of `data` (bytes read so far). kIncomplete until the end of
// the headers (an empty line) has arrived; kBad when it is not an HTTP/1.x
// request line, contains control bytes, or exceeds kMaxHttpRequest.
inline HttpParse ParseHttpRequest(std::string_view data, HttpRequestLine* out) {
  std::size_t end = data.find("\r\n\r\n");
  std::size_t end_lf = data.find("\n\n");
  if (end == std::string_view::npos && end_lf == std::string_view::npos) {
    return data.size() >= kMaxHttpRequest ? HttpParse::kBad : HttpParse::kIncomplete;
  }
  std::size_t eol = data.find('\n');
  std::string_view line = data.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  for (char c : line) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return HttpParse::kBad;
  }
  std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return HttpParse::kBad;
  std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1) return HttpParse::kBad;
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.0" && version != "HTTP/1.1") return HttpParse::kBad;
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (target.front() != '/') return HttpParse::kBad;
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  out->method = std::string(line.substr(0, sp1));
  out->path = std::string(target);
  return HttpParse::kOk;
}

}  // namespace walferry::cli
