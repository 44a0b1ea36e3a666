// Internals of the archive module shared between its .cc files. Not part of
// the public contract (archive/archive.h).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "archive/archive.h"
#include "archive/store_codec.h"
#include "core/result.h"
#include "core/stream.h"

namespace walferry::archive::internal {

using archive::Recompressor;  // archive/store_codec.h
using archive::ReadStored;

// Decompresses a stored zstd/gzip stream (any number of frames/members) to `sink`.
Status Decompress(int fd, const std::string& name, ByteSink& sink);

// Streams the raw content of a temp data file (in the store format, written
// with pwrite only) to `sink`, from its start, then finishes the sink.
Status ReadDataPrefix(int fd, const std::string& name, StoreFormat format, ByteSink& sink);

// Size and XXH3-128 of the raw content of an opened stored file.
Result<std::pair<std::uint64_t, Hash128>> HashStored(int fd, const std::string& name,
                                                     StoreFormat format);

}  // namespace walferry::archive::internal
