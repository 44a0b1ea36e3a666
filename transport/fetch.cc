// The one FETCH client (transport/fetch.h): HELLO and FETCH, then the entry
// as OPEN, CHUNK* (each verified), COMMIT (the whole stream verified).
#include "transport/fetch.h"

#include <vector>

#include "core/hash.h"
#include "transport/chunk_decoders_internal.h"
#include "transport/wire.h"

namespace walferry::transport {
namespace {

// One FETCH of `name` over one connection.
class FetchClient {
 public:
  FetchClient(Conn& conn, std::string peer, const std::string& name, ByteSink& sink)
      : reader_(conn), writer_(conn), peer_(std::move(peer)), name_(name), sink_(sink) {}

  Status Run(const std::string& cluster) {
    // HELLO and FETCH back to back: one round trip after the TLS handshake
    // (the receiver reads them in order), so a missing-file probe costs one.
    WF_TRY(writer_.Write(HelloFrame{kProtocolVersion, kFeatureNone, cluster}));
    WF_TRY(writer_.Write(FetchFrame{0, name_}));
    WF_ASSIGN(Frame hello, reader_.Read());
    if (TypeOf(hello) != FrameType::kHello) return RemoteError(hello);
    WF_ASSIGN(Frame first, reader_.Read());
    if (TypeOf(first) != FrameType::kOpen) return RemoteError(first);
    const OpenFrame open = std::get<OpenFrame>(first);
    if (open.name != name_) return Error(ErrorCode::kProtocol, peer_ + " answered for another name");
    for (;;) {
      WF_ASSIGN(Frame f, reader_.Read());
      if (TypeOf(f) == FrameType::kChunk) {
        WF_TRY(Chunk(open, std::get<ChunkFrame>(f)));
        continue;
      }
      if (TypeOf(f) == FrameType::kCommit) {
        const auto& c = std::get<CommitFrame>(f);
        if (c.raw_size != offset_ || !(c.raw_hash == hash_.Digest())) {
          return Error(ErrorCode::kCorrupt,
                       name_ + " from " + peer_ + ": size or checksum of the whole file mismatch");
        }
        return sink_.Finish();
      }
      return RemoteError(f);
    }
  }

 private:
  // The receiver's ERROR as it sent it (kNotFound without the peer: the
  // caller reports a missing file in its own words), or any other frame.
  Error RemoteError(const Frame& f) const {
    if (TypeOf(f) == FrameType::kError) {
      const auto& e = std::get<ErrorFrame>(f);
      return Error(e.code, e.code == ErrorCode::kNotFound ? e.message : peer_ + ": " + e.message);
    }
    return Error(ErrorCode::kProtocol, peer_ + ": unexpected " + std::string(FrameTypeName(TypeOf(f))));
  }

  Status Chunk(const OpenFrame& open, const ChunkFrame& c) {
    if (c.index != index_ || c.raw_offset != offset_ || c.raw_len > open.chunk_size) {
      return Error(ErrorCode::kProtocol, peer_ + ": chunk " + std::to_string(c.index) + " out of order");
    }
    std::span<const std::byte> bytes = c.payload;
    if (c.codec != WireCodec::kRaw) {
      raw_.resize(c.raw_len);
      Status st = decoders_.Decompress(c, raw_);
      if (!st.ok()) return st.error().Wrap(name_ + " from " + peer_);
      bytes = raw_;
    }
    if (Xxh3_64(bytes) != c.raw_xxh3) {
      return Error(ErrorCode::kCorrupt, name_ + " from " + peer_ + ": chunk " + std::to_string(c.index) +
                                            " checksum mismatch");
    }
    hash_.Update(bytes);
    WF_TRY(sink_.Write(bytes));
    ++index_;
    offset_ += c.raw_len;
    return Status::Ok();
  }

  FrameReader reader_;
  FrameWriter writer_;
  const std::string peer_;
  const std::string& name_;
  ByteSink& sink_;
  internal::ChunkDecoders decoders_;
  std::vector<std::byte> raw_;
  Xxh3Stream hash_;
  std::uint64_t index_ = 0, offset_ = 0;
};

}  // namespace

Status Fetch(const Endpoint& endpoint, const TlsConfig& tls, const std::string& cluster, const std::string& name,
             ByteSink& sink) {
  WF_ASSIGN(auto conn, Connect(endpoint, tls));
  FetchClient client(*conn, endpoint.host + ":" + std::to_string(endpoint.port), name, sink);
  return client.Run(cluster);
}

}  // namespace walferry::transport
