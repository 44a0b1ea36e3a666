#include "transport/fetch.h"

#include <memory>
#include <vector>

#include "compress/codec.h"
#include "core/hash.h"
#include "transport/wire.h"

namespace walferry::transport {

Status Fetch(const Endpoint& endpoint, const TlsConfig& tls, const std::string& cluster, const std::string& name,
             ByteSink& sink) {
  const std::string peer = endpoint.host + ":" + std::to_string(endpoint.port);
  WF_ASSIGN(auto conn, Connect(endpoint, tls));
  FrameReader reader(*conn);
  FrameWriter writer(*conn);
  auto remote_error = [&](const Frame& f) -> Error {
    if (TypeOf(f) == FrameType::kError) {
      const auto& e = std::get<ErrorFrame>(f);
      return Error(e.code, e.code == ErrorCode::kNotFound ? e.message : peer + ": " + e.message);
    }
    return Error(ErrorCode::kProtocol, peer + ": unexpected " + std::string(FrameTypeName(TypeOf(f))));
  };
  // HELLO and FETCH back to back: one round trip after the TLS handshake
  // (the receiver reads them in order), so a missing-file probe costs one.
  WF_TRY(writer.Write(HelloFrame{kProtocolVersion, kFeatureNone, cluster}));
  WF_TRY(writer.Write(FetchFrame{0, name}));
  WF_ASSIGN(Frame hello, reader.Read());
  if (TypeOf(hello) != FrameType::kHello) return remote_error(hello);
  WF_ASSIGN(Frame first, reader.Read());
  if (TypeOf(first) != FrameType::kOpen) return remote_error(first);
  const OpenFrame open = std::get<OpenFrame>(first);
  if (open.name != name) return Error(ErrorCode::kProtocol, peer + " answered for another name");
  WF_ASSIGN(auto decoder, compress::MakeDecoder(compress::Algorithm::kZstd));
  std::unique_ptr<compress::Decoder> gzip;
  std::vector<std::byte> raw;
  Xxh3Stream hash;
  std::uint64_t index = 0, offset = 0;
  for (;;) {
    WF_ASSIGN(Frame f, reader.Read());
    if (TypeOf(f) == FrameType::kChunk) {
      const auto& c = std::get<ChunkFrame>(f);
      if (c.index != index || c.raw_offset != offset || c.raw_len > open.chunk_size) {
        return Error(ErrorCode::kProtocol, peer + ": chunk " + std::to_string(c.index) + " out of order");
      }
      std::span<const std::byte> bytes = c.payload;
      if (c.codec != WireCodec::kRaw) {
        raw.resize(c.raw_len);
        compress::Decoder* d = decoder.get();
        if (c.codec == WireCodec::kGzip) {
          if (!gzip) {
            WF_ASSIGN(gzip, compress::MakeDecoder(compress::Algorithm::kGzip));
          }
          d = gzip.get();
        }
        Status st = d->DecompressChunk(c.payload, raw);
        if (!st.ok()) return st.error().Wrap(name + " from " + peer);
        bytes = raw;
      }
      if (Xxh3_64(bytes) != c.raw_xxh3) {
        return Error(ErrorCode::kCorrupt, name + " from " + peer + ": chunk " + std::to_string(c.index) +
                                              " checksum mismatch");
      }
      hash.Update(bytes);
      WF_TRY(sink.Write(bytes));
      ++index;
      offset += c.raw_len;
      continue;
    }
    if (TypeOf(f) == FrameType::kCommit) {
      const auto& c = std::get<CommitFrame>(f);
      if (c.raw_size != offset || !(c.raw_hash == hash.Digest())) {
        return Error(ErrorCode::kCorrupt, name + " from " + peer + ": size or checksum of the whole file mismatch");
      }
      return sink.Finish();
    }
    return remote_error(f);
  }
}

}  // namespace walferry::transport
