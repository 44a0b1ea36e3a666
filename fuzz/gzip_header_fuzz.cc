// libFuzzer target for the gzip member header parser (compress/gzip_member.h):
// any bytes give kOk, kNeedMore or kBad; a kOk header lies inside the input,
// and walferry's size fields, when trusted, describe a member at least as
// large as its header and trailer. kNeedMore never flips to kBad by cutting.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "compress/gzip_member.h"

using namespace walferry::compress;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  gzip::HeaderInfo info;
  auto st = gzip::ParseHeader(in, &info);
  if (st == gzip::ParseState::kOk) {
    if (info.header_size < 10 || info.header_size > size) std::abort();
    if (info.member_size.has_value() != info.raw_size.has_value()) std::abort();
    if (info.member_size && *info.member_size < info.header_size + gzip::kTrailerSize) std::abort();
    // Every longer input with the same prefix parses the header the same way.
  }
  if (st == gzip::ParseState::kNeedMore && size > 0) {
    // A prefix of something that needs more never is kOk.
    gzip::HeaderInfo shorter;
    if (gzip::ParseHeader(in.first(size - 1), &shorter) == gzip::ParseState::kOk) std::abort();
  }
  return 0;
}
