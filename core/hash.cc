#include "core/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstdio>
#include <cstring>

namespace walferry {

struct Xxh3Stream::State {
  XXH3_state_t s;
};

std::uint64_t Xxh3_64(std::span<const std::byte> data) {
  return XXH3_64bits(data.data(), data.size());
}

Hash128 Xxh3_128(std::span<const std::byte> data) {
  XXH128_hash_t h = XXH3_128bits(data.data(), data.size());
  return {h.low64, h.high64};
}

std::string Hash128::Hex() const {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(high),
                static_cast<unsigned long long>(low));
  return buf;
}

Xxh3Stream::Xxh3Stream() : state_(std::make_unique<State>()) { Reset(); }
Xxh3Stream::~Xxh3Stream() = default;

void Xxh3Stream::Reset() { XXH3_128bits_reset(&state_->s); }

void Xxh3Stream::Update(std::span<const std::byte> data) {
  XXH3_128bits_update(&state_->s, data.data(), data.size());
}

Hash128 Xxh3Stream::Digest() const {
  XXH128_hash_t h = XXH3_128bits_digest(&state_->s);
  return {h.low64, h.high64};
}

// XXH3_state_t holds a pointer to its secret (extSecret, null for the default
// secret) and otherwise plain data; with the default secret a byte copy is a
// faithful snapshot within one build of the library.
std::string Xxh3Stream::Save() const {
  return std::string(reinterpret_cast<const char*>(&state_->s), sizeof(XXH3_state_t));
}

bool Xxh3Stream::Restore(const std::string& blob) {
  if (blob.size() != sizeof(XXH3_state_t)) return false;
  std::memcpy(&state_->s, blob.data(), sizeof(XXH3_state_t));
  return state_->s.extSecret == nullptr;
}

}  // namespace walferry
