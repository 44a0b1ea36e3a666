// libFuzzer target for the config file parser (cli/config.h): any text parses
// or is refused with one kInvalidArgument line; parsed keys are non-empty,
// keys and values hold no newline, and Find returns each parsed value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cli/config.h"

using namespace walferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto c = cli::Config::Parse(text, "fuzz.conf");
  if (!c.ok()) {
    if (c.error().code() != ErrorCode::kInvalidArgument) std::abort();
    if (c.error().message().find('\n') != std::string::npos) std::abort();
    return 0;
  }
  for (const auto& [k, v] : c->values()) {
    if (k.empty() || k.find('\n') != std::string::npos || v.find('\n') != std::string::npos) std::abort();
    if (c->Find(k) == nullptr || *c->Find(k) != v) std::abort();
  }
  return 0;
}
