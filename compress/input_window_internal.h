// The decompressor's input: a reusable buffer and a sliding window over a
// ByteSource (compress/decompress.cc). Not thread-safe: the decompressor reads
// the window under its input lock.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "compress/codec.h"
#include "core/result.h"

namespace walferry::compress::internal {

inline constexpr std::size_t kWindowSize = std::size_t{1} << 20;

// A growable byte buffer that is reused, never shrunk (fresh pages are slow).
class Buffer {
 public:
  std::byte* data() { return data_.get(); }
  std::size_t capacity() const { return cap_; }
  void Reserve(std::size_t n) {
    if (n <= cap_) return;
    std::size_t cap = std::max(n, cap_ * 2);
    cap = (cap + 0xffff) & ~std::size_t{0xffff};
    data_ = std::make_unique_for_overwrite<std::byte[]>(cap);
    cap_ = cap;
  }

 private:
  std::unique_ptr<std::byte[]> data_;
  std::size_t cap_ = 0;
};

// A sliding window over the input stream.
class InputWindow {
 public:
  explicit InputWindow(ByteSource& src) : src_(src) { buf_.Reserve(kWindowSize); }

  std::span<const std::byte> avail() const { return {buf_ptr() + begin_, end_ - begin_}; }
  std::size_t size() const { return end_ - begin_; }
  bool eof() const { return eof_; }
  std::uint64_t offset() const { return offset_; }  // stream offset of avail()[0]

  void Consume(std::size_t n) {
    begin_ += n;
    offset_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }

  // Reads until at least `want` bytes are available or the input ends.
  Status Ensure(std::size_t want) {
    while (size() < want && !eof_) WF_TRY(ReadMore(want));
    return Status::Ok();
  }

  // One read into the free space (making room for at least `want` bytes in
  // the window); sets eof() when the source is exhausted.
  Status ReadMore(std::size_t want = 0) {
    want = std::max(want, size() + 1);
    if (buf_.capacity() - begin_ < want || end_ == buf_.capacity()) {
      if (buf_.capacity() < want) {
        Buffer bigger;
        bigger.Reserve(std::max(want, 2 * buf_.capacity()));
        if (size()) std::memcpy(bigger.data(), buf_.data() + begin_, size());
        buf_ = std::move(bigger);
      } else if (begin_ > 0) {
        std::memmove(buf_.data(), buf_.data() + begin_, size());
      }
      end_ -= begin_;
      begin_ = 0;
    }
    WF_ASSIGN(std::size_t n, src_.Read({buf_.data() + end_, buf_.capacity() - end_}));
    if (n == 0) eof_ = true;
    end_ += n;
    return Status::Ok();
  }

 private:
  const std::byte* buf_ptr() const { return const_cast<Buffer&>(buf_).data(); }
  ByteSource& src_;
  Buffer buf_;
  std::size_t begin_ = 0, end_ = 0;
  std::uint64_t offset_ = 0;
  bool eof_ = false;
};

}  // namespace walferry::compress::internal
