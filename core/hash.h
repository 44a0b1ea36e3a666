// XXH3 helpers: 64-bit per chunk, streaming 128-bit over a whole transfer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace walferry {

std::uint64_t Xxh3_64(std::span<const std::byte> data);

struct Hash128 {
  std::uint64_t low = 0, high = 0;
  bool operator==(const Hash128&) const = default;
  std::string Hex() const;  // 32 lowercase hex digits, high then low
};

// Streaming XXH3-128. Not thread-safe. Copyable state (Save/Restore) so a
// receiver can persist a running hash in its resume manifest.
class Xxh3Stream {
 public:
  Xxh3Stream();
  ~Xxh3Stream();
  Xxh3Stream(const Xxh3Stream&) = delete;
  Xxh3Stream& operator=(const Xxh3Stream&) = delete;
  void Update(std::span<const std::byte> data);
  Hash128 Digest() const;
  void Reset();
  // Serialization of the running state for resume manifests: a fixed-size
  // (~300 byte) binary blob holding no pointers, valid across processes and
  // restarts of the same build. Restore replaces the state and returns true, or
  // returns false and leaves the state unchanged when the blob is not one that
  // Save produced (wrong size, magic or inconsistent counters).
  // Restore also refuses states longer than kMaxRestoreLength (no stream is
  // that long): a state continued past it saves, but does not restore.
  static constexpr std::uint64_t kMaxRestoreLength = std::uint64_t{1} << 62;
  std::string Save() const;
  bool Restore(const std::string& blob);
  // Bytes hashed since the last Reset (or as restored).
  std::uint64_t length() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Hash128 Xxh3_128(std::span<const std::byte> data);

}  // namespace walferry
