// Internals of the archive module shared between its .cc files. Not part of
// the public contract (archive/archive.h).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "archive/archive.h"
#include "core/result.h"
#include "core/stream.h"

namespace walferry::archive::internal {

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

// Decompresses a stored zstd/gzip stream (any number of frames/members) to `sink`.
Status Decompress(int fd, const std::string& name, ByteSink& sink);

// Reads a stored file (already opened, O_NOFOLLOW) in `format` and streams its
// raw content to `sink`, then calls sink.Finish(). An empty compressed file is
// empty content.
Status ReadStored(int fd, const std::string& name, StoreFormat format, ByteSink& sink);

// Streams the raw content of a temp data file (in the store format, written
// with pwrite only) to `sink`, from its start, then finishes the sink.
Status ReadDataPrefix(int fd, const std::string& name, StoreFormat format, ByteSink& sink);

// Size and XXH3-128 of the raw content of an opened stored file.
Result<std::pair<std::uint64_t, Hash128>> HashStored(int fd, const std::string& name,
                                                     StoreFormat format);

}  // namespace walferry::archive::internal
