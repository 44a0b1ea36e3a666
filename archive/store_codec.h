// How entries rest in a store format (StoreFormat): the frame encoder and the
// reader every store implementation shares, the disk archive and the object
// store alike. Public: store implementations outside archive/ use it.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "archive/archive.h"
#include "core/result.h"
#include "core/stream.h"

namespace walferry::archive {

// Compresses raw chunks into self-contained frames of one store format, for
// a receiver whose store format differs from the frames it receives. Owns one
// codec context and one output buffer, both reused. Not thread-safe.
class Recompressor {
 public:
  static Result<std::unique_ptr<Recompressor>> Make(StoreFormat format);
  virtual ~Recompressor() = default;
  // Returns the frame; valid until the next call.
  virtual Result<std::span<const std::byte>> Compress(std::span<const std::byte> raw) = 0;
};

// Reads a stored file (already opened, O_NOFOLLOW) in `format` and streams its
// raw content to `sink`, then calls sink.Finish(). An empty compressed file is
// empty content. `name` is shown in errors. `threads`: as DecompressStream's
// (0: the machine's cores).
Status ReadStored(int fd, const std::string& name, StoreFormat format, ByteSink& sink, std::size_t threads = 0);
// Most bytes of memory ReadStored of the opened file `fd` allocates at once
// (compress::DecodeMemory of its first bytes); `fallback` when it cannot tell.
std::uint64_t StoredReadMemory(int fd, StoreFormat format, std::size_t threads, std::uint64_t fallback);

}  // namespace walferry::archive
