// Bytes(s): the bytes of a std::string as the span the core/transport write
// calls take. One definition for the tests that used to carry their own copy
// (the unit tests of a module are one unity build: two copies would clash).
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace walferry::testing_support {

inline std::span<const std::byte> Bytes(const std::string& s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}

}  // namespace walferry::testing_support
