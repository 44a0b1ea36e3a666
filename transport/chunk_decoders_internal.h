// The decoders a reader of CHUNK frames needs, made on first use and reused
// (the receiver's sessions and the FETCH client); only transport/ includes
// this. Not thread-safe: one per connection.
#pragma once

#include <memory>
#include <span>

#include "compress/codec.h"
#include "transport/wire.h"

namespace walferry::transport::internal {

class ChunkDecoders {
 public:
  // Decompresses the payload of `c` (codec zstd or gzip, not raw) into `dst`,
  // which holds exactly c.raw_len bytes. The decoder's error as it is.
  Status Decompress(const ChunkFrame& c, std::span<std::byte> dst) {
    auto& d = decoders_[static_cast<int>(c.codec)];
    if (!d) {
      WF_ASSIGN(d, compress::MakeDecoder(static_cast<compress::Algorithm>(c.codec)));
    }
    return d->DecompressChunk(c.payload, dst);
  }

 private:
  std::unique_ptr<compress::Decoder> decoders_[3];  // indexed by WireCodec
};

}  // namespace walferry::transport::internal
