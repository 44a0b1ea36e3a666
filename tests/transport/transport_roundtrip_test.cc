// Receiver + sender in one process over real loopback TCP (insecure mode), with
// an in-memory archive that can inject faults, and connections that can be cut
// or damaged. Checks: round trips of files and pipes, idempotency, exists-
// different, resume after cuts (file and pipe), corruption detection, refused
// names, disk full, many transfers on one connection, garbage on the wire.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "archive/archive.h"
#include "core/hash.h"
#include "transport/net.h"
#include "transport/sender.h"
#include "transport/server.h"
#include "transport/wire.h"

namespace walferry::transport {
namespace {

// ---------- an in-memory archive ----------
struct MemStore {
  std::mutex mu;
  std::map<std::string, std::string> files;  // cluster/name -> raw content
  struct Partial {
    std::string name;
    std::vector<std::string> chunks;  // durable chunks
  };
  std::map<std::string, Partial> partial;  // transfer id -> durable state
  int begins = 0;
  int fail_append_at = -1;  // chunk index that gets ENOSPC
  // Simulates a receiver that lost its saved state: Begin never resumes, even
  // if a connection that is still winding down syncs its state afterwards.
  bool forget_partials = false;
};

class MemIncoming final : public archive::Incoming {
 public:
  MemIncoming(MemStore& s, archive::TransferSpec spec, std::vector<std::string> durable)
      : s_(s), spec_(std::move(spec)), durable_(std::move(durable)) {}
  std::uint64_t next_chunk() const override { return durable_.size() + pending_.size(); }
  std::uint64_t next_raw_offset() const override {
    std::uint64_t n = 0;
    for (auto& c : durable_) n += c.size();
    for (auto& c : pending_) n += c.size();
    return n;
  }
  Status Append(std::uint64_t index, std::span<const std::byte> raw, compress::Algorithm,
                std::span<const std::byte>) override {
    if (index != next_chunk()) return Error(ErrorCode::kInternal, "append out of order");
    {
      std::lock_guard lk(s_.mu);
      if (s_.fail_append_at >= 0 && index == static_cast<std::uint64_t>(s_.fail_append_at)) {
        return Error(ErrorCode::kNoSpace, "write .incoming/x.data: No space left on device");
      }
    }
    pending_.emplace_back(reinterpret_cast<const char*>(raw.data()), raw.size());
    return Status::Ok();
  }
  Result<std::uint64_t> Sync() override {
    for (auto& p : pending_) durable_.push_back(std::move(p));
    pending_.clear();
    std::lock_guard lk(s_.mu);
    s_.partial[spec_.transfer_id] = {spec_.name, durable_};
    return std::uint64_t(durable_.size());
  }
  Result<archive::CommitOutcome> Commit(std::uint64_t raw_size, const Hash128& raw_hash) override {
    std::string all;
    for (auto& c : durable_) all += c;
    for (auto& c : pending_) all += c;
    std::lock_guard lk(s_.mu);
    s_.partial.erase(spec_.transfer_id);
    if (all.size() != raw_size || Xxh3_128({reinterpret_cast<const std::byte*>(all.data()), all.size()}) != raw_hash) {
      return Error(ErrorCode::kCorrupt, "whole-stream checksum mismatch");
    }
    std::string key = spec_.cluster + "/" + spec_.name;
    auto it = s_.files.find(key);
    if (it != s_.files.end()) {
      if (it->second == all) return archive::CommitOutcome::kAlreadyIdentical;
      return Error(ErrorCode::kExistsDifferent, spec_.name + " exists with different content");
    }
    s_.files[key] = all;
    return archive::CommitOutcome::kPlaced;
  }
  void Abandon() override {
    std::lock_guard lk(s_.mu);
    s_.partial.erase(spec_.transfer_id);
    durable_.clear();
    pending_.clear();
  }

 private:
  MemStore& s_;
  archive::TransferSpec spec_;
  std::vector<std::string> durable_, pending_;
};

class MemArchive final : public archive::Archive {
 public:
  explicit MemArchive(MemStore& s) : s_(s) {}
  archive::StoreFormat format() const override { return archive::StoreFormat::kZstd; }
  const std::string& root() const override { return root_; }
  Result<std::unique_ptr<archive::Incoming>> Begin(const archive::TransferSpec& spec) override {
    std::lock_guard lk(s_.mu);
    ++s_.begins;
    std::vector<std::string> durable;
    auto it = s_.partial.find(spec.transfer_id);
    if (!s_.forget_partials && it != s_.partial.end() && it->second.name == spec.name) {
      durable = it->second.chunks;
    }
    return std::unique_ptr<archive::Incoming>(new MemIncoming(s_, spec, durable));
  }
  Result<archive::StoredEntry> Find(std::string_view cluster, std::string_view name) const override {
    std::lock_guard lk(s_.mu);
    std::string key = std::string(cluster) + "/" + std::string(name);
    if (s_.files.find(key) == s_.files.end()) return Error(ErrorCode::kNotFound, "n/a");
    return archive::StoredEntry{std::string(name), key, archive::StoreFormat::kRaw, archive::EntryKind::kFile};
  }
  Status Read(const archive::StoredEntry& e, ByteSink& sink) const override {
    std::string data;
    {
      std::lock_guard lk(s_.mu);
      auto it = s_.files.find(e.path);
      if (it == s_.files.end()) return Error(ErrorCode::kNotFound, "n/a");
      data = it->second;
    }
    WF_TRY(sink.Write({reinterpret_cast<const std::byte*>(data.data()), data.size()}));
    return sink.Finish();
  }
  Result<std::vector<archive::StoredEntry>> List(std::string_view, archive::EntryKind) const override {
    return std::vector<archive::StoredEntry>{};
  }
  Result<std::vector<std::string>> Clusters() const override { return std::vector<std::string>{}; }
  Result<std::optional<std::uint64_t>> SystemIdentifier(std::string_view) const override {
    return std::optional<std::uint64_t>();
  }
  Status PurgeStale(std::int64_t) override { return Status::Ok(); }

 private:
  MemStore& s_;
  std::string root_ = "/mem";
};

// ---------- connections that break ----------
// Wraps a Conn: after `cut_after` written bytes, writes fail (and the socket is
// shut down); if `flip_at` >= 0 the byte at that write offset is inverted.
// Forwards everything to the connection it wraps; the wrappers below override
// what they change.
class ForwardingConn : public Conn {
 public:
  explicit ForwardingConn(std::unique_ptr<Conn> inner) : inner_(std::move(inner)) {}
  Result<std::size_t> ReadSome(std::span<std::byte> buf) override { return inner_->ReadSome(buf); }
  Status WriteAll(std::span<const std::byte> data) override { return inner_->WriteAll(data); }
  void Shutdown() override { inner_->Shutdown(); }
  const std::string& peer_cluster() const override { return inner_->peer_cluster(); }
  std::string peer_address() const override { return inner_->peer_address(); }
  void SetTimeout(std::chrono::milliseconds t) override { inner_->SetTimeout(t); }

 protected:
  std::unique_ptr<Conn> inner_;
};

class FaultyConn final : public ForwardingConn {
 public:
  FaultyConn(std::unique_ptr<Conn> inner, std::int64_t cut_after, std::int64_t flip_at)
      : ForwardingConn(std::move(inner)), cut_after_(cut_after), flip_at_(flip_at) {}
  Status WriteAll(std::span<const std::byte> data) override {
    std::vector<std::byte> copy;
    if (flip_at_ >= written_ && flip_at_ < written_ + static_cast<std::int64_t>(data.size())) {
      copy.assign(data.begin(), data.end());
      copy[flip_at_ - written_] ^= std::byte{0xff};
      data = copy;
    }
    if (cut_after_ >= 0 && written_ + static_cast<std::int64_t>(data.size()) > cut_after_) {
      auto part = data.first(static_cast<std::size_t>(std::max<std::int64_t>(0, cut_after_ - written_)));
      (void)inner_->WriteAll(part);
      inner_->Shutdown();
      return Error(ErrorCode::kNetwork, "injected cut");
    }
    written_ += static_cast<std::int64_t>(data.size());
    return inner_->WriteAll(data);
  }

 private:
  std::int64_t cut_after_, flip_at_;
  std::int64_t written_ = 0;
};

// Passes a connection through, recording the HAVE frames the sender writes;
// with `hide`, clears those feature bits in the receiver's HELLO (a receiver
// from before them).
class HaveTap final : public ForwardingConn {
 public:
  HaveTap(std::unique_ptr<Conn> inner, std::uint32_t hide, std::vector<HaveFrame>* haves)
      : ForwardingConn(std::move(inner)), hide_(hide), haves_(haves) {}
  Result<std::size_t> ReadSome(std::span<std::byte> buf) override {
    while (!hello_seen_) {
      std::size_t need = 0;
      auto f = ParseFrame(in_, &need);
      if (!f.ok()) return f.error();
      if (f->consumed != 0) {
        auto hello = std::get<HelloFrame>(f->frame);
        hello.features &= ~hide_;
        std::vector<std::byte> rest(in_.begin() + static_cast<std::ptrdiff_t>(f->consumed), in_.end());
        in_.clear();
        if (!EncodeFrame(hello, in_).ok()) return Error(ErrorCode::kInternal, "re-encode HELLO");
        in_.insert(in_.end(), rest.begin(), rest.end());
        hello_seen_ = true;
        break;
      }
      std::byte tmp[4096];
      auto n = inner_->ReadSome(tmp);
      if (!n.ok() || *n == 0) return n;
      in_.insert(in_.end(), tmp, tmp + *n);
    }
    if (in_.empty()) return inner_->ReadSome(buf);
    std::size_t n = std::min(buf.size(), in_.size());
    std::memcpy(buf.data(), in_.data(), n);
    in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  Status WriteAll(std::span<const std::byte> data) override {
    out_.insert(out_.end(), data.begin(), data.end());
    for (;;) {
      std::size_t need = 0;
      auto f = ParseFrame(out_, &need);
      if (!f.ok() || f->consumed == 0) break;
      if (TypeOf(f->frame) == FrameType::kHave) haves_->push_back(std::get<HaveFrame>(f->frame));
      out_.erase(out_.begin(), out_.begin() + static_cast<std::ptrdiff_t>(f->consumed));
    }
    return inner_->WriteAll(data);
  }

 private:
  std::uint32_t hide_;
  std::vector<HaveFrame>* haves_;
  std::vector<std::byte> in_, out_;
  bool hello_seen_ = false;
};

class ReceiverFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    archive_ = std::make_unique<MemArchive>(store_);
    TlsConfig tls;
    tls.insecure_loopback = true;
    auto l = Listen(Endpoint{"127.0.0.1", 0}, tls);
    ASSERT_TRUE(l.ok()) << l.error().message();
    listener_ = std::move(*l);
    ServerOptions so;
    so.insecure = true;
    so.log = [this](const std::string& s) {
      std::lock_guard lk(log_mu_);
      log_.push_back(s);
    };
    server_ = std::make_unique<Server>(*archive_, so);
    thread_ = std::thread([this] { (void)server_->Run(*listener_); });
  }
  void TearDown() override {
    server_->Stop();
    thread_.join();
  }

  // Options whose n-th connection (0-based) may be faulty.
  SendOptions Options(std::function<std::unique_ptr<Conn>(std::unique_ptr<Conn>, int)> wrap = nullptr) {
    SendOptions o;
    int port = listener_->port();
    o.connect = [this, port, wrap]() -> Result<std::unique_ptr<Conn>> {
      TlsConfig tls;
      tls.insecure_loopback = true;
      auto c = Connect(Endpoint{"127.0.0.1", port}, tls);
      if (!c.ok()) return c.error();
      int n = connects_++;
      if (wrap) return wrap(std::move(*c), n);
      return std::move(*c);
    };
    o.cluster = "main";
    o.threads = 2;
    o.chunk_size = 64 * 1024;
    o.backoff_initial = std::chrono::milliseconds(5);
    o.backoff_max = std::chrono::milliseconds(20);
    return o;
  }

  std::string WriteTemp(const std::string& content) {
    char tmpl[] = "/tmp/wf-transport-test.XXXXXX";
    int fd = ::mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    ::close(fd);
    temps_.push_back(tmpl);
    return tmpl;
  }
  ~ReceiverFixture() override {
    for (auto& t : temps_) ::unlink(t.c_str());
  }

  std::string Stored(const std::string& name) {
    std::lock_guard lk(store_.mu);
    auto it = store_.files.find("main/" + name);
    return it == store_.files.end() ? "<absent>" : it->second;
  }

  MemStore store_;
  std::unique_ptr<MemArchive> archive_;
  std::unique_ptr<Listener> listener_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<int> connects_{0};
  std::mutex log_mu_;
  std::vector<std::string> log_;
  std::vector<std::string> temps_;
};

std::string Data(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  // Half compressible, half random.
  for (std::size_t i = 0; i < n; ++i) s[i] = (i / 4096) % 2 ? static_cast<char>(rng()) : static_cast<char>('a' + i % 7);
  return s;
}

// A pipe-like source (no size hint, not re-readable).
class StringSource final : public ByteSource {
 public:
  explicit StringSource(std::string s) : s_(std::move(s)) {}
  Result<std::size_t> Read(std::span<std::byte> buf) override {
    std::size_t n = std::min(buf.size(), s_.size() - pos_);
    std::memcpy(buf.data(), s_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  const std::string& name() const override { return name_; }

 private:
  std::string s_, name_ = "pipe";
  std::size_t pos_ = 0;
};

TEST_F(ReceiverFixture, FileRoundTripIdenticalAndDifferent) {
  std::string data = Data(1'000'000, 1);
  std::string path = WriteTemp(data);
  Sender sender(Options());
  auto r = sender.SendFile(path, "base.tar");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->outcome, WireOutcome::kPlaced);
  EXPECT_EQ(r->raw_bytes, data.size());
  EXPECT_EQ(Stored("base.tar"), data);

  // Same content again, on the same connection: identical.
  auto again = sender.SendFile(path, "base.tar");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->outcome, WireOutcome::kIdentical);

  // Different content, same name: exists-different, original kept.
  std::string other = WriteTemp(Data(1000, 2));
  auto diff = sender.SendFile(other, "base.tar");
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().code(), ErrorCode::kExistsDifferent);
  EXPECT_EQ(Stored("base.tar"), data);
}

// HAVE (kFeatureHave): a sender that asks first ships nothing for content the
// receiver already stores, and still ships (and is refused) for other content.
TEST_F(ReceiverFixture, AskHaveSkipsIdenticalContent) {
  std::string data = Data(3'000'000, 5);
  std::string path = WriteTemp(data);
  {
    Sender first(Options());
    auto r = first.SendFile(path, "000000010000000000000009.00000028.backup");
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->outcome, WireOutcome::kPlaced);
    EXPECT_GT(r->wire_bytes, 0u);
  }
  auto opts = Options();
  opts.ask_have = true;
  Sender asking(std::move(opts));
  auto again = asking.SendFile(path, "000000010000000000000009.00000028.backup");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->outcome, WireOutcome::kIdentical);
  EXPECT_EQ(again->wire_bytes, 0u);  // not shipped
  EXPECT_EQ(again->raw_bytes, data.size());
  // Absent: shipped as usual.
  auto fresh = asking.SendFile(WriteTemp(Data(10'000, 6)), "fresh.bin");
  ASSERT_TRUE(fresh.ok()) << fresh.error().message();
  EXPECT_EQ(fresh->outcome, WireOutcome::kPlaced);
  EXPECT_GT(fresh->wire_bytes, 0u);
  // Different: shipped, refused at COMMIT, original kept.
  auto diff = asking.SendFile(WriteTemp(Data(3'000'000, 7)), "000000010000000000000009.00000028.backup");
  ASSERT_FALSE(diff.ok());
  EXPECT_EQ(diff.error().code(), ErrorCode::kExistsDifferent);
  EXPECT_EQ(Stored("000000010000000000000009.00000028.backup"), data);
}

// The name first (kFeatureHaveProbe): a file the receiver does not hold is
// shipped without being read for the question; a held one is hashed and asked
// about whole. A receiver without the probe is asked the whole question at once.
TEST_F(ReceiverFixture, AskHaveProbesTheNameBeforeHashing) {
  std::string data = Data(2'000'000, 8);
  std::string path = WriteTemp(data);
  for (std::uint32_t hide : {0u, kFeatureHaveProbe}) {
    SCOPED_TRACE(hide ? "receiver without the probe" : "receiver with the probe");
    std::vector<HaveFrame> haves;
    auto opts = Options([&](std::unique_ptr<Conn> c, int) -> std::unique_ptr<Conn> {
      return std::make_unique<HaveTap>(std::move(c), hide, &haves);
    });
    opts.ask_have = true;
    const std::string name = hide ? "probe-old.bin" : "probe-new.bin";
    {
      Sender sender(opts);
      auto absent = sender.SendFile(path, name);
      ASSERT_TRUE(absent.ok()) << absent.error().message();
      EXPECT_EQ(absent->outcome, WireOutcome::kPlaced);
    }
    ASSERT_EQ(haves.size(), 1u);
    EXPECT_EQ(haves[0].name, name);
    if (hide) {
      EXPECT_EQ(haves[0].raw_size, data.size());
      EXPECT_EQ(haves[0].raw_hash, Xxh3_128(std::as_bytes(std::span(data.data(), data.size()))));
    } else {
      EXPECT_EQ(haves[0].raw_size, kUnknownSize);  // the name alone
      EXPECT_EQ(haves[0].raw_hash, Hash128{});
    }
    haves.clear();
    {
      Sender sender(opts);
      auto again = sender.SendFile(path, name);
      ASSERT_TRUE(again.ok()) << again.error().message();
      EXPECT_EQ(again->outcome, WireOutcome::kIdentical);
      EXPECT_EQ(again->wire_bytes, 0u);
    }
    ASSERT_EQ(haves.size(), hide ? 1u : 2u);
    EXPECT_EQ(haves.back().raw_size, data.size());
    EXPECT_EQ(haves.back().raw_hash, Xxh3_128(std::as_bytes(std::span(data.data(), data.size()))));
    haves.clear();
    {
      // Held with other content: probed, asked whole, shipped, refused at COMMIT.
      Sender sender(opts);
      auto diff = sender.SendFile(WriteTemp(Data(2'000'000, 9)), name);
      ASSERT_FALSE(diff.ok());
      EXPECT_EQ(diff.error().code(), ErrorCode::kExistsDifferent);
    }
    EXPECT_EQ(haves.size(), hide ? 1u : 2u);
    EXPECT_EQ(Stored(name), data);
  }
}

TEST_F(ReceiverFixture, ManyTransfersShareOneConnection) {
  Sender sender(Options());
  for (int i = 0; i < 5; ++i) {
    std::string data = Data(100'000 + i, 10 + i);
    auto r = sender.SendFile(WriteTemp(data), "f" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(Stored("f" + std::to_string(i)), data);
  }
  EXPECT_EQ(connects_.load(), 1);
}

TEST_F(ReceiverFixture, EmptyFileAndEmptyPipe) {
  Sender sender(Options());
  auto r = sender.SendFile(WriteTemp(""), "empty");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Stored("empty"), "");
  StringSource src("");
  auto p = sender.SendStream(src, "empty-pipe");
  ASSERT_TRUE(p.ok()) << p.error().message();
  EXPECT_EQ(Stored("empty-pipe"), "");
}

TEST_F(ReceiverFixture, PipeSurvivesCutsByResendingItsWindow) {
  std::string data = Data(3'000'000, 3);
  // Connections 0..3 are cut after a few hundred KiB each.
  auto o = Options([](std::unique_ptr<Conn> c, int n) -> std::unique_ptr<Conn> {
    if (n < 4) return std::make_unique<FaultyConn>(std::move(c), 100'000 + n * 50'021, -1);
    return c;
  });
  Sender sender(o);
  StringSource src(data);
  auto r = sender.SendStream(src, "stream.bin");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Stored("stream.bin"), data);
  EXPECT_GE(r->reconnects, 4);
}

TEST_F(ReceiverFixture, PipeFailsClearlyWhenTheReceiverLostWhatItAcknowledged) {
  std::string data = Data(3'000'000, 7);
  auto o = Options([this](std::unique_ptr<Conn> c, int n) -> std::unique_ptr<Conn> {
    if (n == 0) return std::make_unique<FaultyConn>(std::move(c), 1'200'000, -1);
    // The receiver "lost" its saved state (wiped .incoming): resume point 0,
    // but acknowledged chunks are gone from the sender's window.
    // Set (not a one-off clear) so that the cut connection's server thread,
    // which may still sync after this point, cannot restore it.
    std::lock_guard lk(store_.mu);
    store_.forget_partials = true;
    return c;
  });
  Sender sender(o);
  StringSource src(data);
  auto r = sender.SendStream(src, "lost.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("cannot resume"), std::string::npos) << r.error().message();
  EXPECT_EQ(Stored("lost.bin"), "<absent>");
}

TEST_F(ReceiverFixture, FileResumesInALaterRunAfterTheFirstGaveUp) {
  std::string data = Data(2'000'000, 4);
  std::string path = WriteTemp(data);
  auto o = Options([](std::unique_ptr<Conn> c, int n) -> std::unique_ptr<Conn> {
    if (n == 0) return std::make_unique<FaultyConn>(std::move(c), 600'000, -1);
    return c;
  });
  o.max_retries = 0;
  {
    Sender first(o);
    auto r = first.SendFile(path, "resume.bin");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kNetwork);
  }
  EXPECT_EQ(Stored("resume.bin"), "<absent>");
  // The receiver notices the cut asynchronously; retry until it has let go.
  Sender second(Options());
  auto r = second.SendFile(path, "resume.bin");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_GT(r->resumed_from, 0u);
  EXPECT_LT(r->wire_bytes, data.size());
  EXPECT_EQ(Stored("resume.bin"), data);
}

TEST_F(ReceiverFixture, DamagedChunkIsDetectedAndResent) {
  std::string data = Data(500'000, 5);
  auto o = Options([](std::unique_ptr<Conn> c, int n) -> std::unique_ptr<Conn> {
    // Flip a byte deep inside the first connection's chunk stream.
    if (n == 0) return std::make_unique<FaultyConn>(std::move(c), -1, 200'000);
    return c;
  });
  Sender sender(o);
  StringSource src(data);
  auto r = sender.SendStream(src, "damaged.bin");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(Stored("damaged.bin"), data);
  EXPECT_GE(r->reconnects, 1);
  bool logged = false;
  {
    std::lock_guard lk(log_mu_);
    for (auto& l : log_) logged |= l.find("corrupt") != std::string::npos || l.find("protocol") != std::string::npos;
  }
  EXPECT_TRUE(logged);
}

TEST_F(ReceiverFixture, RefusedNamesWriteNothing) {
  Sender sender(Options());
  for (std::string bad : {"../etc/passwd", "a/b", ".hidden", ".."}) {
    auto r = sender.SendFile(WriteTemp("x"), bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kRefused) << bad << ": " << r.error().message();
  }
  std::lock_guard lk(store_.mu);
  EXPECT_TRUE(store_.files.empty());
  EXPECT_EQ(store_.begins, 0);
}

TEST_F(ReceiverFixture, PushOfANonWalNameIsRefused) {
  auto o = Options();
  o.kind = WireKind::kWal;
  Sender sender(o);
  auto r = sender.SendFile(WriteTemp("x"), "notes.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kRefused);
}

TEST_F(ReceiverFixture, DiskFullIsReportedAsNoSpace) {
  {
    std::lock_guard lk(store_.mu);
    store_.fail_append_at = 3;
  }
  Sender sender(Options());
  auto r = sender.SendFile(WriteTemp(Data(1'000'000, 6)), "big.bin");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNoSpace) << r.error().message();
  EXPECT_EQ(Stored("big.bin"), "<absent>");
}

TEST_F(ReceiverFixture, GarbageAndOversizedFramesAreRefused) {
  for (int variant = 0; variant < 3; ++variant) {
    TlsConfig tls;
    tls.insecure_loopback = true;
    auto c = Connect(Endpoint{"127.0.0.1", listener_->port()}, tls);
    ASSERT_TRUE(c.ok());
    std::vector<std::byte> bytes;
    if (variant == 0) {
      std::string g = "GET / HTTP/1.0\r\n\r\n";
      for (char ch : g) bytes.push_back(std::byte(ch));
    } else if (variant == 1) {
      // A valid HELLO, then a CHUNK header announcing 2 GiB.
      ASSERT_TRUE(EncodeFrame(HelloFrame{1, 0, "main"}, bytes).ok());
      for (int b : {int('W'), int('F'), 4, 0, 0, 0, 0, 0x80}) bytes.push_back(std::byte(static_cast<std::uint8_t>(b)));
    } else {
      // A CHUNK before any OPEN.
      ASSERT_TRUE(EncodeFrame(HelloFrame{1, 0, "main"}, bytes).ok());
      std::string p = "abc";
      ChunkFrame ch{0, 0, 3, 3, WireCodec::kRaw, 0, {reinterpret_cast<const std::byte*>(p.data()), 3}};
      ASSERT_TRUE(EncodeFrame(ch, bytes).ok());
    }
    ASSERT_TRUE((*c)->WriteAll(bytes).ok());
    FrameReader reader(**c);
    Result<Frame> f = reader.Read();
    if (variant > 0) {  // first the HELLO answer
      ASSERT_TRUE(f.ok());
      f = reader.Read();
    }
    ASSERT_TRUE(f.ok()) << f.error().message();
    ASSERT_EQ(TypeOf(*f), FrameType::kError);
    EXPECT_EQ(std::get<ErrorFrame>(*f).code, ErrorCode::kProtocol);
  }
  std::lock_guard lk(store_.mu);
  EXPECT_EQ(store_.begins, 0);
  EXPECT_TRUE(store_.files.empty());
}

TEST_F(ReceiverFixture, UnreachableReceiverIsANetworkError) {
  SendOptions o;
  TlsConfig tls;
  tls.insecure_loopback = true;
  o.connect = [tls]() { return Connect(Endpoint{"127.0.0.1", 1}, tls); };
  o.max_retries = 1;
  o.backoff_initial = std::chrono::milliseconds(1);
  Sender sender(o);
  auto r = sender.SendFile(WriteTemp("x"), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNetwork);
}

}  // namespace
}  // namespace walferry::transport
