// libFuzzer target for the wire frame parser (transport/wire.h): any byte
// string either parses into frames that re-encode to the same bytes, asks for
// more input, or is refused with kProtocol. Never a crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "transport/wire.h"

using namespace walferry;
using namespace walferry::transport;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  // Parse a sequence of frames, as a connection would.
  while (!in.empty()) {
    std::size_t need = 0;
    auto r = ParseFrame(in, &need);
    if (!r.ok()) {
      if (r.error().code() != ErrorCode::kProtocol) std::abort();
      break;
    }
    if (r->consumed == 0) {
      if (need <= in.size() || need > kHeaderSize + kMaxFrameBody) std::abort();
      break;
    }
    // A frame that parsed must re-encode to exactly the bytes it came from.
    std::vector<std::byte> out;
    if (!EncodeFrame(r->frame, out).ok()) std::abort();
    if (out.size() != r->consumed || std::memcmp(out.data(), in.data(), out.size()) != 0) {
      // ERROR frames with an unknown code byte map to kInternal; everything else is exact.
      if (TypeOf(r->frame) != FrameType::kError) std::abort();
    }
    in = in.subspan(r->consumed);
  }
  return 0;
}
