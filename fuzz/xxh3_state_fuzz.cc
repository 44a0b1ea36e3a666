// libFuzzer target for the saved XXH3 state (core/hash.h Xxh3Stream::Restore),
// read from resume manifests on disk: any blob is refused or restores a state
// that keeps working and saves to a blob that restores again identically.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/hash.h"

using namespace walferry;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string blob(reinterpret_cast<const char*>(data), size);
  Xxh3Stream s;
  if (!s.Restore(blob)) return 0;
  std::string more = "more bytes after a resume";
  s.Update(std::as_bytes(std::span(more.data(), more.size())));
  Hash128 a = s.Digest();
  Xxh3Stream t;
  if (!t.Restore(s.Save())) std::abort();
  if (t.Digest() != a) std::abort();
  return 0;
}
