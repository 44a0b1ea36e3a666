// Internal helpers shared by the compress and decompress pipelines.
#pragma once

#include <cstddef>
#include <span>

#include "core/result.h"
#include "core/stream.h"

namespace walferry::compress {

// Reads until `buf` is full or the source reports EOF (tolerates short reads).
Result<std::size_t> ReadFully(ByteSource& src, std::span<std::byte> buf);

// 0 -> number of cores.
std::size_t ResolveThreads(std::size_t threads);

}  // namespace walferry::compress
