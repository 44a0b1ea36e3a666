// The archive's only calls into the compression module: recompressing chunks
// for a store format that differs from the received frames, and decompressing
// stored entries.
#include <fcntl.h>
#include <unistd.h>

#include "archive/archive_internal.h"
#include "compress/codec.h"

namespace walferry::archive::internal {

Result<std::unique_ptr<Recompressor>> Recompressor::Make(StoreFormat format) {
  return Error(ErrorCode::kUnsupported,
               "storing as " + std::string(format == StoreFormat::kGzip ? "gzip" : "zstd") +
                   " needs the compression module, which is not built in yet");
}

Status Decompress(int /*fd*/, const std::string& name, ByteSink& /*sink*/) {
  return Error(ErrorCode::kUnsupported,
               name + ": reading compressed entries needs the compression module, which is not built in yet");
}

}  // namespace walferry::archive::internal
