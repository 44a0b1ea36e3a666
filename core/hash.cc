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

std::uint64_t Xxh3Stream::length() const { return state_->s.totalLen; }

void Xxh3Stream::Update(std::span<const std::byte> data) {
  XXH3_128bits_update(&state_->s, data.data(), data.size());
}

Hash128 Xxh3Stream::Digest() const {
  XXH128_hash_t h = XXH3_128bits_digest(&state_->s);
  return {h.low64, h.high64};
}

// The saved state holds only the plain data of an XXH3 state in the default
// (unseeded, default secret) mode: the accumulators, the whole internal buffer
// (the digest reads bytes from before `bufferedSize` when fewer than a stripe
// are buffered), and the three counters. The raw struct cannot be copied as is:
// its `extSecret` points at the library's built-in secret, an address that is
// meaningless in another process (the receiver restarts between Save and
// Restore). Restore rebuilds the pointer with Reset and checks every counter,
// so a corrupt blob is refused instead of steering reads out of bounds.
namespace {
constexpr char kStateMagic[8] = {'w', 'f', 'x', 'x', 'h', '3', 'v', '1'};
constexpr std::size_t kStateBlobSize = sizeof kStateMagic + sizeof(XXH64_hash_t) * 8 +
                                       XXH3_INTERNALBUFFER_SIZE + 4 + 8 + 8;

void Put(std::string& out, const void* p, std::size_t n) {
  out.append(static_cast<const char*>(p), n);
}
void Get(const char*& in, void* p, std::size_t n) {
  std::memcpy(p, in, n);
  in += n;
}
}  // namespace

std::string Xxh3Stream::Save() const {
  const XXH3_state_t& s = state_->s;
  std::string out;
  out.reserve(kStateBlobSize);
  Put(out, kStateMagic, sizeof kStateMagic);
  Put(out, s.acc, sizeof s.acc);
  Put(out, s.buffer, sizeof s.buffer);
  std::uint32_t buffered = s.bufferedSize;
  std::uint64_t stripes = s.nbStripesSoFar;
  std::uint64_t total = s.totalLen;
  Put(out, &buffered, sizeof buffered);
  Put(out, &stripes, sizeof stripes);
  Put(out, &total, sizeof total);
  return out;
}

bool Xxh3Stream::Restore(const std::string& blob) {
  if (blob.size() != kStateBlobSize) return false;
  if (std::memcmp(blob.data(), kStateMagic, sizeof kStateMagic) != 0) return false;
  XXH3_state_t fresh;
  XXH3_128bits_reset(&fresh);
  const char* in = blob.data() + sizeof kStateMagic;
  Get(in, fresh.acc, sizeof fresh.acc);
  Get(in, fresh.buffer, sizeof fresh.buffer);
  std::uint32_t buffered;
  std::uint64_t stripes, total;
  Get(in, &buffered, sizeof buffered);
  Get(in, &stripes, sizeof stripes);
  Get(in, &total, sizeof total);
  // Invariants of XXH3's streaming state: the buffer never holds more than its
  // size, the stripe counter wraps at a block, and the length covers both.
  if (buffered > XXH3_INTERNALBUFFER_SIZE) return false;
  // No stream is 2^62 bytes long; a length near 2^64 would wrap on the next
  // Update into a state that breaks the rules below (and Restore refuses).
  if (total > kMaxRestoreLength) return false;
  if (stripes >= fresh.nbStripesPerBlock) return false;
  // Up to a full buffer everything stays buffered; past it, update always keeps
  // at least one byte buffered for the digest.
  // Nothing is consumed while everything is buffered, so the stripe counter is 0.
  if (total <= XXH3_INTERNALBUFFER_SIZE ? (buffered != total || stripes != 0) : buffered == 0) return false;
  // Past the buffer, XXH3_update consumes whole stripes only, and the stripe
  // counter is the number consumed modulo the stripes of a block.
  if (total > XXH3_INTERNALBUFFER_SIZE) {
    const std::uint64_t consumed = total - buffered;
    if (consumed % XXH_STRIPE_LEN != 0) return false;
    if ((consumed / XXH_STRIPE_LEN) % fresh.nbStripesPerBlock != stripes) return false;
  }
  fresh.bufferedSize = buffered;
  fresh.nbStripesSoFar = static_cast<std::size_t>(stripes);
  fresh.totalLen = total;
  state_->s = fresh;
  return true;
}

}  // namespace walferry
