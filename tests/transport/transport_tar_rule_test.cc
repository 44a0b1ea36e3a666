// The receiver's tar rule cannot be bypassed by a sender (issue 8, point 4): a
// client that skips the sender-side check and COMMITs a cut tar with the right
// XXH3-128 gets ERROR refused, and nothing is stored; the complete tar is
// stored. In-process Server::ServeConnection over a scripted connection and a
// real archive directory.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "core/hash.h"
#include "transport/server.h"
#include "transport/wire.h"

namespace walferry::transport {
namespace {

class Preloaded final : public Conn {
 public:
  explicit Preloaded(std::vector<std::byte> in) : in_(std::move(in)) {}
  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    std::size_t n = std::min(buf.size(), in_.size() - pos_);
    if (n) std::memcpy(buf.data(), in_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  Status WriteAll(std::span<const std::byte> d) override {
    out_.insert(out_.end(), d.begin(), d.end());
    return Status::Ok();
  }
  void Shutdown() override {}
  const std::string& peer_cluster() const override { return cluster_; }
  std::string peer_address() const override { return "script"; }
  void SetTimeout(std::chrono::milliseconds) override {}
  std::vector<Frame> Written() const {
    std::vector<Frame> frames;
    std::span<const std::byte> rest(out_);
    while (!rest.empty()) {
      std::size_t need = 0;
      auto f = ParseFrame(rest, &need);
      if (!f.ok() || f->consumed == 0) break;
      if (TypeOf(f->frame) != FrameType::kChunk) frames.push_back(f->frame);
      rest = rest.subspan(f->consumed);
    }
    return frames;
  }

 private:
  std::vector<std::byte> in_, out_;
  std::size_t pos_ = 0;
  std::string cluster_;
};

std::string TarMember(const std::string& name, const std::string& data) {
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), name.size());
  std::snprintf(&h[124], 12, "%011o", static_cast<unsigned>(data.size()));
  h[156] = '0';
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  std::memset(&h[148], ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(&h[148], 8, "%06o", sum);
  std::string m = h + data;
  m.append((512 - data.size() % 512) % 512, '\0');
  return m;
}

// Runs one connection that sends `content` as `name` (kind file) and COMMITs
// it with its right size and hash; returns the frames the receiver wrote.
std::vector<Frame> SendUnchecked(archive::Archive& a, const std::string& name, const std::string& content) {
  std::vector<std::byte> script;
  auto put = [&](const Frame& f) { EXPECT_TRUE(EncodeFrame(f, script).ok()); };
  put(HelloFrame{kProtocolVersion, kFeatureNone, "main"});
  OpenFrame o;
  o.name = name;
  o.kind = WireKind::kFile;
  o.codec = WireCodec::kRaw;
  o.chunk_size = 4096;
  o.raw_size = content.size();
  o.transfer_id[0] = static_cast<std::uint8_t>(content.size());
  put(o);
  auto bytes = std::as_bytes(std::span(content.data(), content.size()));
  for (std::size_t off = 0, i = 0; off < bytes.size(); off += 4096, ++i) {
    auto raw = bytes.subspan(off, std::min<std::size_t>(4096, bytes.size() - off));
    put(ChunkFrame{i, off, static_cast<std::uint32_t>(raw.size()), static_cast<std::uint32_t>(raw.size()),
                   WireCodec::kRaw, Xxh3_64(raw), raw});
  }
  put(CommitFrame{content.size(), Xxh3_128(bytes)});
  ServerOptions so;
  so.insecure = true;
  so.log = [](const std::string&) {};
  Server server(a, so);
  Preloaded conn(std::move(script));
  server.ServeConnection(conn);
  return conn.Written();
}

TEST(ReceiverTarRule, CutTarFromAnUncheckedSenderIsRefused) {
  char tmpl[] = "/tmp/wf-tar-rule.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  auto a = archive::Archive::Open(root, archive::StoreFormat::kRaw);
  ASSERT_TRUE(a.ok());
  const std::string tar = TarMember("a.txt", std::string(5000, 'a')) + TarMember("b.txt", "b") + std::string(1024, '\0');

  auto cut = SendUnchecked(**a, "cut.tar", tar.substr(0, 6000));
  ASSERT_FALSE(cut.empty());
  ASSERT_EQ(TypeOf(cut.back()), FrameType::kError);
  EXPECT_EQ(std::get<ErrorFrame>(cut.back()).code, ErrorCode::kRefused) << std::get<ErrorFrame>(cut.back()).message;
  EXPECT_FALSE(std::filesystem::exists(root + "/main/files/cut.tar"));

  auto full = SendUnchecked(**a, "full.tar", tar);
  ASSERT_FALSE(full.empty());
  EXPECT_EQ(TypeOf(full.back()), FrameType::kCommitted);
  EXPECT_TRUE(std::filesystem::exists(root + "/main/files/full.tar"));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace walferry::transport
