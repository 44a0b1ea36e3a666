// Internal: the gzip member layout walferry writes, and a parser for any gzip
// member header (RFC 1952). Not part of the public compress/codec.h contract.
//
// A walferry member is a standard gzip member whose header carries FEXTRA with
// one subfield, so stock gzip/pigz/zcat read it and ignore the field:
//
//   offset size  field
//   0      2     ID1 ID2 = 1f 8b
//   2      1     CM = 8 (deflate)
//   3      1     FLG = 04 (FEXTRA)
//   4      4     MTIME = 0
//   8      1     XFL = 0
//   9      1     OS = 3 (Unix)
//   10     2     XLEN = 12 (little-endian)
//   12     2     SI1 SI2 = 'W' 'F'
//   14     2     LEN = 8
//   16     4     member size: total bytes of this member, header to ISIZE (LE)
//   20     4     raw size: uncompressed bytes of this member (LE)
//   24     ...   raw deflate data
//   end-8  4     CRC32 of the raw bytes (LE)
//   end-4  4     ISIZE = raw size mod 2^32 (LE)
//
// The member size lets a reader cut the stream into members without inflating,
// so members decompress in parallel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "core/bytes.h"

namespace walferry::compress::gzip {

inline constexpr std::size_t kHeaderSize = 24;
inline constexpr std::size_t kTrailerSize = 8;
inline constexpr std::uint8_t kId1 = 0x1f, kId2 = 0x8b, kCmDeflate = 8;
inline constexpr std::uint8_t kFlagText = 0x01, kFlagHcrc = 0x02, kFlagExtra = 0x04,
                              kFlagName = 0x08, kFlagComment = 0x10, kFlagReserved = 0xe0;
inline constexpr std::uint8_t kSubfieldId1 = 'W', kSubfieldId2 = 'F';
inline constexpr std::uint16_t kSubfieldLen = 8;

// Writes a walferry member header into `out` (kHeaderSize bytes).
inline void WriteHeader(std::byte* out, std::uint32_t member_size, std::uint32_t raw_size) {
  const std::uint8_t fixed[16] = {kId1, kId2, kCmDeflate, kFlagExtra, 0, 0, 0, 0, 0, 3,
                                  12,   0,    kSubfieldId1, kSubfieldId2, kSubfieldLen, 0};
  std::memcpy(out, fixed, sizeof fixed);
  StoreLe<std::uint32_t>(out + 16, member_size);
  StoreLe<std::uint32_t>(out + 20, raw_size);
}

// What the header of a member tells before any inflating.
struct HeaderInfo {
  std::size_t header_size = 0;  // bytes up to the deflate data
  // Present only when the member carries walferry's subfield.
  std::optional<std::uint32_t> member_size;
  std::optional<std::uint32_t> raw_size;
};

enum class ParseState { kOk, kNeedMore, kBad };

// Parses a member header at the start of `in`. kNeedMore when `in` ends inside
// the header; kBad when it is not a gzip member header.
inline ParseState ParseHeader(std::span<const std::byte> in, HeaderInfo* info) {
  auto u8 = [&](std::size_t i) { return std::to_integer<std::uint8_t>(in[i]); };
  if (in.size() < 10) {
    // Reject early what cannot become a gzip header.
    if (in.size() >= 1 && u8(0) != kId1) return ParseState::kBad;
    if (in.size() >= 2 && u8(1) != kId2) return ParseState::kBad;
    if (in.size() >= 3 && u8(2) != kCmDeflate) return ParseState::kBad;
    return ParseState::kNeedMore;
  }
  if (u8(0) != kId1 || u8(1) != kId2 || u8(2) != kCmDeflate) return ParseState::kBad;
  const std::uint8_t flg = u8(3);
  if (flg & kFlagReserved) return ParseState::kBad;
  std::size_t pos = 10;
  *info = HeaderInfo{};
  if (flg & kFlagExtra) {
    if (in.size() < pos + 2) return ParseState::kNeedMore;
    const std::size_t xlen = LoadLe<std::uint16_t>(in.data() + pos);
    pos += 2;
    if (in.size() < pos + xlen) return ParseState::kNeedMore;
    // Walk the subfields; a malformed extra field is only a reason not to trust it.
    std::size_t p = pos;
    const std::size_t end = pos + xlen;
    while (p + 4 <= end) {
      const std::size_t len = LoadLe<std::uint16_t>(in.data() + p + 2);
      if (p + 4 + len > end) break;
      if (u8(p) == kSubfieldId1 && u8(p + 1) == kSubfieldId2 && len == kSubfieldLen) {
        info->member_size = LoadLe<std::uint32_t>(in.data() + p + 4);
        info->raw_size = LoadLe<std::uint32_t>(in.data() + p + 8);
      }
      p += 4 + len;
    }
    pos = end;
  }
  for (std::uint8_t f : {kFlagName, kFlagComment}) {
    if (!(flg & f)) continue;
    while (true) {
      if (pos >= in.size()) return ParseState::kNeedMore;
      if (u8(pos++) == 0) break;
    }
  }
  if (flg & kFlagHcrc) pos += 2;
  if (in.size() < pos) return ParseState::kNeedMore;
  info->header_size = pos;
  // A size field that cannot describe this member is not ours to trust.
  if (info->member_size && *info->member_size < pos + kTrailerSize) {
    info->member_size.reset();
    info->raw_size.reset();
  }
  return ParseState::kOk;
}

}  // namespace walferry::compress::gzip
