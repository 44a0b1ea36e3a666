// Small byte-level helpers every module needs once: little-endian loads and
// stores (PostgreSQL's page headers, gzip trailers, the wire format, the
// prefetch trailer) and hexadecimal text. Pure functions, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace walferry {

inline constexpr char kHexLower[] = "0123456789abcdef";

template <typename T>
constexpr T LoadLe(const std::byte* p) {
  static_assert(std::is_unsigned_v<T>);
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    v |= static_cast<T>(static_cast<T>(std::to_integer<unsigned char>(p[i])) << (8 * i));
  }
  return v;
}

template <typename T>
constexpr void StoreLe(std::byte* p, T v) {
  static_assert(std::is_unsigned_v<T>);
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// Lowercase hex of each byte of `bytes`.
std::string HexEncode(std::string_view bytes);
// Inverse of HexEncode (either case); false (and *out unspecified) on odd
// length or a non-hex character.
bool HexDecode(std::string_view hex, std::string* out);
// Value of one hex digit (either case), -1 for anything else.
int HexDigitValue(char c);

// `s` without leading and trailing white space (as isspace: " \t\n\v\f\r").
std::string_view Trim(std::string_view s);

}  // namespace walferry
