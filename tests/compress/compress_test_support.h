// In-memory byte streams and data generators for the compress tests.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/stream.h"

namespace walferry::compress::testing {

using Bytes = std::vector<std::byte>;

// Serves `data`, at most `max_read` bytes per Read (to exercise short reads),
// and fails with kIo once `fail_at` bytes were served (if set).
class MemSource final : public ByteSource {
 public:
  explicit MemSource(const Bytes& data, std::size_t max_read = SIZE_MAX,
                     std::size_t fail_at = SIZE_MAX)
      : data_(data), max_read_(max_read), fail_at_(fail_at) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    // Read by the pipeline's workers (one at a time); position() by the test.
    const std::size_t pos = pos_.load();
    if (pos >= fail_at_) return Error(ErrorCode::kIo, "read mem: injected failure");
    std::size_t n = std::min({buf.size(), data_.size() - pos, max_read_});
    if (n) std::memcpy(buf.data(), data_.data() + pos, n);
    pos_.store(pos + n);
    return n;
  }
  const std::string& name() const override { return name_; }
  std::size_t position() const { return pos_.load(); }

 private:
  const Bytes& data_;
  std::size_t max_read_, fail_at_;
  std::atomic<std::size_t> pos_{0};
  std::string name_ = "mem";
};

class MemSink final : public ByteSink {
 public:
  explicit MemSink(std::size_t fail_after = SIZE_MAX) : fail_after_(fail_after) {}
  Status Write(std::span<const std::byte> d) override {
    if (data.size() + d.size() > fail_after_) return Error(ErrorCode::kNoSpace, "write mem: no space");
    data.insert(data.end(), d.begin(), d.end());
    return Status::Ok();
  }
  Status Finish() override {
    finished = true;
    return Status::Ok();
  }
  Bytes data;
  bool finished = false;

 private:
  std::size_t fail_after_;
};

inline Bytes RandomBytes(std::size_t n, unsigned seed = 1) {
  Bytes b(n);
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < n; i += 8) {
    std::uint64_t v = rng();
    std::memcpy(b.data() + i, &v, std::min<std::size_t>(8, n - i));
  }
  return b;
}

// Compressible text-like data: words from a small vocabulary with numbers.
inline Bytes TextBytes(std::size_t n, unsigned seed = 2) {
  static const char* kWords[] = {"walferry ", "segment ", "0000000100000000000000", "checkpoint ",
                                 "pgbench_accounts ", "\n", "tuple ", "lsn 0/16B3F20 "};
  std::mt19937 rng(seed);
  std::string s;
  s.reserve(n + 64);
  while (s.size() < n) {
    s += kWords[rng() % 8];
    if (rng() % 4 == 0) s += std::to_string(rng() % 100000);
  }
  Bytes b(n);
  if (n) std::memcpy(b.data(), s.data(), n);
  return b;
}

}  // namespace walferry::compress::testing
