// libFuzzer target for the tar completeness check (store/tar_check.h): any
// stream, fed whole or in pieces chosen by the input, gets the same verdict;
// a verdict is Ok or kRefused; never a crash or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "store/tar_check.h"

using namespace walferry;
using namespace walferry::store;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const ContentCheck mode = static_cast<ContentCheck>(data[0] % 3);
  const std::size_t piece = 1 + data[1] * 7;
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 2), size - 2);
  TarCheck whole(mode), pieces(mode);
  whole.Update(in);
  for (std::size_t i = 0; i < in.size(); i += piece) pieces.Update(in.subspan(i, std::min(piece, in.size() - i)));
  Status a = whole.Finish(), b = pieces.Finish();
  if (a.ok() != b.ok()) std::abort();
  if (!a.ok() && a.error().code() != ErrorCode::kRefused) std::abort();
  if (!a.ok() && a.error().message() != b.error().message()) std::abort();
  if (whole.bytes() != in.size()) std::abort();
  return 0;
}
