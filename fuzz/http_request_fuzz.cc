// The metrics endpoint's request parser on arbitrary bytes: never crashes,
// never reads past the input, and a parsed request has a path starting "/".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cli/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  walferry::cli::HttpRequestLine req;
  if (walferry::cli::ParseHttpRequest(in, &req) == walferry::cli::HttpParse::kOk) {
    if (req.path.empty() || req.path[0] != '/' || req.method.empty()) std::abort();
  }
  return 0;
}
