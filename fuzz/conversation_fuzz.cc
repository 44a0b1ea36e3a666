// Structured libFuzzer target for whole conversations against an in-process
// receiver (transport/server.h over a real archive in /dev/shm): the input is
// decoded into a sequence of frames (HELLO, OPEN, CHUNK with real zstd/gzip
// payloads or raw bytes and right or wrong checksums, COMMIT with the right or
// a wrong hash, FETCH, HAVE (probe or whole), frames out of order, garbage), encoded with the real
// encoder and fed to Server::ServeConnection as one connection. Never a crash,
// leak or UB; every frame the receiver writes parses; a file placed under a
// final name was sent whole with its right XXH3-128.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "compress/codec.h"
#include "core/hash.h"
#include "transport/server.h"
#include "transport/wire.h"

using namespace walferry;
using namespace walferry::transport;

namespace {

class Input {
 public:
  Input(const std::uint8_t* d, std::size_t n) : d_(d), n_(n) {}
  bool empty() const { return pos_ >= n_; }
  std::uint8_t U8() { return pos_ < n_ ? d_[pos_++] : 0; }
  std::uint32_t U16() { return U8() | (std::uint32_t{U8()} << 8); }
  std::vector<std::byte> Bytes(std::size_t n) {
    n = std::min(n, n_ - std::min(pos_, n_));
    std::vector<std::byte> v(n);
    if (n) std::memcpy(v.data(), d_ + pos_, n);
    pos_ += n;
    return v;
  }

 private:
  const std::uint8_t* d_;
  std::size_t n_, pos_ = 0;
};

// One connection: reads the scripted bytes then EOF; checks what the server writes.
class ScriptConn final : public Conn {
 public:
  explicit ScriptConn(std::vector<std::byte> in) : in_(std::move(in)) {}
  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    std::size_t n = std::min(buf.size(), in_.size() - pos_);
    if (n) std::memcpy(buf.data(), in_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  Status WriteAll(std::span<const std::byte> data) override {
    out_.insert(out_.end(), data.begin(), data.end());
    while (!out_.empty()) {
      std::size_t need = 0;
      auto f = ParseFrame(out_, &need);
      if (!f.ok()) std::abort();  // the receiver wrote a frame its own parser refuses
      if (f->consumed == 0) break;
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(f->consumed));
    }
    return Status::Ok();
  }
  void Shutdown() override {}
  const std::string& peer_cluster() const override { return cluster_; }
  std::string peer_address() const override { return "fuzz"; }
  void SetTimeout(std::chrono::milliseconds) override {}

 private:
  std::vector<std::byte> in_, out_;
  std::size_t pos_ = 0;
  std::string cluster_;
};

const char* const kNames[] = {"base.tar", "x.bin", "000000010000000000000001", "00000002.history",
                              "../escape", "a/b", "000000010000000000000002.partial", "f.zst"};
const std::uint32_t kChunkSizes[] = {1, 7, 512, 4096, 65536, 1u << 20};

struct Sent {
  std::string name;
  std::string content;  // raw bytes of the chunks sent, in order
  bool whole_and_right = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string root = "/dev/shm/wf-conversation-fuzz-" + std::to_string(::getpid());
  static auto zstd = compress::MakeCodec(compress::Algorithm::kZstd, 1);
  static auto gzip = compress::MakeCodec(compress::Algorithm::kGzip, 1);
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  Input in(data, size);
  const auto format = static_cast<archive::StoreFormat>(in.U8() % 3);
  auto a = archive::Archive::Open(root, format);
  if (!a.ok()) std::abort();

  std::vector<std::byte> script;
  auto put = [&](const Frame& f) {
    if (!EncodeFrame(f, script).ok()) {
      // Only over-long names/clusters are refused by the encoder; we never make those.
      std::abort();
    }
  };
  std::vector<Sent> sent;
  // COMMIT ends the transfer on the receiver (placed or refused): CHUNKs and a
  // second COMMIT after it belong to no transfer, so they must not be added to
  // the record of the committed one (the receiver refuses them as frames
  // outside a transfer). Without this the check compared a correctly stored
  // file with bytes sent after its COMMIT and aborted on a right receiver.
  bool transfer_open = false;
  std::uint64_t next_index = 0, offset = 0;
  std::uint32_t chunk_size = 4096;
  Xxh3Stream hash;
  int steps = 0;
  while (!in.empty() && steps++ < 64) {
    const std::uint8_t op = in.U8();
    switch (op % 8) {
      case 0: {
        const char* clusters[] = {"main", "", "other", "bad/cluster"};
        put(HelloFrame{static_cast<std::uint16_t>(op & 0x80 ? 2 : kProtocolVersion), 0, clusters[in.U8() % 4]});
        break;
      }
      case 1: {
        OpenFrame o;
        o.transfer_id[0] = in.U8();
        o.name = kNames[in.U8() % std::size(kNames)];
        o.kind = static_cast<WireKind>(in.U8() % 5);
        o.codec = static_cast<WireCodec>(in.U8() % 3);
        chunk_size = kChunkSizes[in.U8() % std::size(kChunkSizes)];
        o.chunk_size = chunk_size;
        const std::uint8_t sz = in.U8();
        o.raw_size = sz == 0xff ? kUnknownSize : sz * 97;
        put(o);
        sent.push_back({o.name, "", false});
        transfer_open = true;
        next_index = 0;
        offset = 0;
        hash.Reset();
        break;
      }
      case 2: {
        auto raw = in.Bytes(1 + in.U8() % 64 * (op & 0x80 ? 67 : 1));
        if (raw.empty()) break;
        if (raw.size() > chunk_size) raw.resize(chunk_size);
        const std::uint8_t how = in.U8();
        std::vector<std::byte> payload(compress::MaxCompressedSize(raw.size()));
        WireCodec codec = WireCodec::kRaw;
        std::size_t n = raw.size();
        if ((how & 3) == 1 && zstd.ok()) {
          n = *(*zstd)->Compress(raw, payload);
          codec = WireCodec::kZstd;
        } else if ((how & 3) == 2 && gzip.ok()) {
          n = *(*gzip)->Compress(raw, payload);
          codec = WireCodec::kGzip;
        } else {
          std::memcpy(payload.data(), raw.data(), raw.size());
        }
        payload.resize(n);
        if (how & 4 && !payload.empty()) payload[how % payload.size()] ^= std::byte{0x10};  // damage
        ChunkFrame c{how & 8 ? next_index + 1 : next_index, how & 16 ? offset + 1 : offset,
                     static_cast<std::uint32_t>(raw.size()), static_cast<std::uint32_t>(payload.size()),
                     codec, Xxh3_64(raw) ^ (how & 32 ? 1u : 0u), payload};
        std::vector<std::byte> frame;
        if (!EncodeFrame(c, frame).ok()) break;  // damage that breaks the wire limits
        script.insert(script.end(), frame.begin(), frame.end());
        ++next_index;
        offset += raw.size();
        hash.Update(raw);
        if (transfer_open) sent.back().content.append(reinterpret_cast<const char*>(raw.data()), raw.size());
        break;
      }
      case 3: {
        const std::uint8_t how = in.U8();
        Hash128 h = hash.Digest();
        if (how & 1) h.low ^= 1;
        put(CommitFrame{how & 2 ? offset + 1 : offset, h});
        if (transfer_open) sent.back().whole_and_right = !(how & 3);
        transfer_open = false;
        break;
      }
      case 4: {
        FetchFrame f;
        f.name = kNames[in.U8() % std::size(kNames)];
        f.offset = in.U8() & 1;
        put(f);
        break;
      }
      case 5:
        put(AckFrame{in.U8()});
        break;
      case 6: {
        auto junk = in.Bytes(in.U8() % 32);
        script.insert(script.end(), junk.begin(), junk.end());
        break;
      }
      case 7:
        if (op & 0x40) {
          // HAVE: a probe (the name alone), the whole question with the
          // current hash, or a wrong size.
          const std::uint8_t how = in.U8();
          HaveFrame h{how & 1 ? kUnknownSize : offset + (how & 2 ? 1 : 0), how & 1 ? Hash128{} : hash.Digest(),
                      kNames[in.U8() % std::size(kNames)]};
          put(h);
        } else {
          put(ErrorFrame{ErrorCode::kInternal, "fuzz"});
        }
        break;
    }
  }

  ServerOptions so;
  so.insecure = true;
  so.log = [](const std::string&) {};
  so.io_timeout = std::chrono::milliseconds(100);
  {
    Server server(**a, so);
    ScriptConn conn(std::move(script));
    server.ServeConnection(conn);
  }
  // Whatever is under a final name of cluster main was sent whole and right.
  for (const auto& s : sent) {
    auto entry = (*a)->Find("main", s.name);
    if (!entry.ok()) continue;
    class Collect final : public ByteSink {
     public:
      Status Write(std::span<const std::byte> d) override {
        text.append(reinterpret_cast<const char*>(d.data()), d.size());
        return Status::Ok();
      }
      Status Finish() override { return Status::Ok(); }
      std::string text;
    } sink;
    if (!archive::ReadEntry(*entry, sink).ok()) std::abort();
    bool matches = false;
    for (const auto& t : sent) matches = matches || (t.name == s.name && t.whole_and_right && t.content == sink.text);
    if (!matches) std::abort();
  }
  return 0;
}
