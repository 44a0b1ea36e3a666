// libFuzzer target for the resume manifest parser (archive_internal.h,
// ParseManifest), read from <root>/.incoming/<id>.state after a crash. The
// input is the manifest body; the target appends the XXH3-64 "check" line
// a real manifest ends with (so the fuzzer gets past it) for half the inputs
// and parses the raw input for the other half. A parsed manifest serializes
// back to a text that parses to the same fields. Never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "archive/archive_internal.h"
#include "core/hash.h"

using namespace walferry;
using namespace walferry::archive;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    char sum[32];
    std::snprintf(sum, sizeof sum, "%016llx",
                  static_cast<unsigned long long>(Xxh3_64(std::as_bytes(std::span(text.data(), text.size())))));
    text += "check=" + std::string(sum) + "\n";
  }
  auto m = internal::ParseManifest(text);
  if (!m) return 0;
  auto again = internal::ParseManifest(internal::SerializeManifest(*m));
  if (!again || !(*again == *m)) std::abort();
  return 0;
}
