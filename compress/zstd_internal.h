// Internals of compress/: RAII owners of libzstd and libdeflate contexts, and
// the one conversion of a libzstd error code into an Error. Not a public API.
#pragma once

#include <libdeflate.h>
#include <zstd.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace walferry::compress::internal {

struct ZstdFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }  // also ZSTD_DStream
};
struct DeflateFree {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};
using ZstdCCtxPtr = std::unique_ptr<ZSTD_CCtx, ZstdFree>;
using ZstdDCtxPtr = std::unique_ptr<ZSTD_DCtx, ZstdFree>;
using DeflateCompressorPtr = std::unique_ptr<libdeflate_compressor, DeflateFree>;
using DeflateDecompressorPtr = std::unique_ptr<libdeflate_decompressor, DeflateFree>;

// "WHAT: <libzstd's name for `code`>" with `kind` (kCorrupt for decoding).
inline Error ZstdError(std::size_t code, std::string_view what,
                       ErrorCode kind = ErrorCode::kCorrupt) {
  return Error(kind, std::string(what) + ": " + ZSTD_getErrorName(code));
}

}  // namespace walferry::compress::internal
