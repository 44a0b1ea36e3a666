// What transport/sender.cc, send_file.cc and send_stream.cc share; only
// transport/ includes this.
#pragma once

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>

#include "core/buffer_pool.h"
#include "core/hash.h"
#include "store/tar_check.h"
#include "transport/sender.h"

namespace walferry::transport {
namespace internal {

inline compress::Algorithm ToAlgorithm(WireCodec c) { return static_cast<compress::Algorithm>(c); }

// Hashes (XXH3-128) and counts everything read through it, including chunks the
// pipeline skips on resume, so COMMIT always covers the whole stream.
class HashingSource final : public ByteSource {
 public:
  // `tar`, when given, sees every byte too (the sender's own tar check).
  explicit HashingSource(ByteSource& src, store::TarCheck* tar = nullptr) : src_(src), tar_(tar) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    auto r = src_.Read(buf);
    if (r.ok()) {
      hash_.Update(buf.first(*r));
      if (tar_) tar_->Update(buf.first(*r));
      total_ += *r;
    }
    return r;
  }
  long long SizeHint() const override { return src_.SizeHint(); }
  const std::string& name() const override { return src_.name(); }
  Hash128 Digest() const { return hash_.Digest(); }
  std::uint64_t total() const { return total_; }

 private:
  ByteSource& src_;
  store::TarCheck* tar_;
  Xxh3Stream hash_;
  std::uint64_t total_ = 0;
};

// The sender applies the receiver's tar rule too (docs/archive-layout.md):
// the receiver's check is the one no sender can bypass, but a store that
// cannot read a resumed transfer's temp data back skips it, and this one
// does not depend on the store.
store::ContentCheck SenderCheck(WireKind kind);
// kRefused (nothing stored) when the tar check failed.
Status CheckBeforeCommit(store::TarCheck& tar, const std::string& name);
// A chunk as it goes on the wire: the compressed frame, or the raw bytes when
// compressing did not shrink them (incompressible data; the frame would be
// bigger than the chunk).
ChunkFrame WireChunk(const compress::Chunk& c, compress::Algorithm algorithm);
// kProtocol, "protocol error from receiver: WHAT".
Error ProtocolError(const std::string& what);

}  // namespace internal

// Compressed chunks of a pipe that the receiver has not yet acknowledged as durable.
class Sender::Window {
 public:
  Window(std::size_t capacity, std::size_t buffer_size)
      : capacity_(capacity), pool_(buffer_size, capacity + 1) {}
  struct Entry {
    ChunkFrame head;  // payload points into buf
    PooledBuffer buf;
  };
  bool full() const { return entries_.size() >= capacity_; }
  Status Add(const ChunkFrame& c) {
    if (c.payload.size() > pool_.buffer_size()) {
      return Error(ErrorCode::kInternal, "compressed chunk larger than its window buffer");
    }
    Entry e{c, pool_.Acquire()};
    std::memcpy(e.buf.data(), c.payload.data(), c.payload.size());
    e.buf.set_size(c.payload.size());
    e.head.payload = e.buf.bytes();
    entries_.push_back(std::move(e));
    return Status::Ok();
  }
  void DropBelow(std::uint64_t index) {
    while (!entries_.empty() && entries_.front().head.index < index) entries_.pop_front();
  }
  // Index of the oldest chunk kept (or `next` when empty).
  std::uint64_t first(std::uint64_t next) const { return entries_.empty() ? next : entries_.front().head.index; }
  const std::deque<Entry>& entries() const { return entries_; }

 private:
  std::size_t capacity_;
  BufferPool pool_;
  std::deque<Entry> entries_;
};

struct Sender::Xfer {
  OpenFrame open;
  std::uint32_t ack_every = 8;
  std::uint64_t sent_in_session = 0;  // chunks sent since the last OPENED
  std::uint64_t acks_expected = 0, acks_read = 0;
  std::uint64_t durable = 0;
  std::uint64_t durable_at_failure = 0;  // retries start over once the receiver made progress
  std::uint64_t next_index = 0;       // next chunk index to send
  WireCodec codec = WireCodec::kZstd;
  Window* window = nullptr;
  SendResult result;
};

}  // namespace walferry::transport
