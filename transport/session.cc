// The receiver's frame loop: HELLO, then OPEN / FETCH / HAVE until the peer
// closes; frame admission against the shared buffer budget; ERROR replies.
#include <algorithm>

#include "core/names.h"
#include "transport/session_internal.h"

namespace walferry::transport {

namespace internal {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string MsSince(std::chrono::steady_clock::time_point t0) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  return std::to_string(ms.count());
}

}  // namespace internal

Server::Session::Session(Server& server, Conn& conn, Watch* watch)
    : s_(server), conn_(conn), watch_(watch), bufs_(server.TakeBuffers()), reader_(conn, bufs_->frame, this),
      writer_(conn) {}

Server::Session::~Session() { s_.GiveBuffers(std::move(bufs_)); }

void Server::Session::Run() {
  conn_.SetTimeout(s_.opts_.io_timeout);
  Status st = Hello();
  if (!st.ok()) {
    Fail(st.error(), "");
    return;
  }
  if (watch_) watch_->in_hello.store(false);
  for (;;) {
    auto f = ReadFrame();
    if (!f.ok()) {
      if (f.error().code() != ErrorCode::kNetwork || busy_) Fail(f.error(), "");
      return;  // EOF between transfers is the normal end
    }
    if (TypeOf(*f) == FrameType::kFetch) {
      if (!Fetch(std::get<FetchFrame>(*f))) return;
      continue;
    }
    if (TypeOf(*f) == FrameType::kHave) {
      if (!Have(std::get<HaveFrame>(*f))) return;
      continue;
    }
    if (TypeOf(*f) != FrameType::kOpen) {
      Fail(Error(ErrorCode::kProtocol, "expected OPEN, got " + std::string(FrameTypeName(TypeOf(*f)))), "");
      return;
    }
    if (!Transfer(std::get<OpenFrame>(*f))) return;
  }
}

Status Server::Session::Admit(const FrameHeader& h) {
  std::uint32_t chunk = 0;
  if (h.type == FrameType::kChunk && chunk_size_ > 0) {
    chunk = chunk_size_;
    if (h.body_len > kChunkFixedSize + compress::MaxCompressedSize(chunk)) {
      return Error(ErrorCode::kProtocol, "CHUNK body length " + std::to_string(h.body_len) +
                                             " exceeds what a chunk of " + std::to_string(chunk) + " bytes can take");
    }
  }
  auto& b = *bufs_;
  // The store's compressor (archive::Recompressor) lives with the transfer.
  const bool recompress = s_.store_.format() != store::StoreFormat::kRaw;
  const std::uint64_t store_need = FrameBufferNeed(0, chunk, recompress) - FrameBufferNeed(0, chunk, false);
  std::uint64_t grown = std::max<std::uint64_t>(b.frame.capacity(), kHeaderSize + h.body_len) +
                        std::max<std::uint64_t>(b.raw.capacity(), chunk) + store_need;
  Status st = Lease(grown, FrameBufferNeed(h.body_len, chunk, recompress));
  ArmDeadline();  // the body is the peer's to deliver again
  if (!st.ok()) busy_ = st.error().code() == ErrorCode::kNetwork;
  return st;
}

Status Server::Session::Lease(std::uint64_t grown, std::uint64_t need) {
  auto& b = *bufs_;
  if (grown <= b.leased) return Status::Ok();
  b.frame = {};
  b.raw = {};
  s_.budget_->Release(b.leased);
  b.leased = 0;
  need = std::max(kMinLease, need);
  if (watch_) watch_->deadline_ms.store(0);
  WF_TRY(s_.budget_->Acquire(
      need, std::chrono::steady_clock::now() + s_.opts_.buffer_wait, [this] { return s_.DropSpareBuffers(); },
      [this] { return s_.stopping_.load(); }));
  b.leased = need;
  return Status::Ok();
}

Status Server::Session::LeaseRead(const std::string& name, std::uint64_t bytes) {
  auto& b = *bufs_;
  const std::uint64_t own = b.frame.capacity() + b.raw.capacity();
  Status st = Lease(own + bytes, bytes);
  if (st.ok() || st.error().code() != ErrorCode::kRefused) return st;
  return Error(ErrorCode::kRefused, "reading " + name + " needs " + std::to_string((bytes + (1u << 20) - 1) >> 20) +
                                        " MiB of buffer, more than the receiver's whole budget (serve --max-buffer-mb " +
                                        std::to_string(s_.budget_->capacity() >> 20) + ")");
}

void Server::Session::ShrinkLease() {
  auto& b = *bufs_;
  const std::uint64_t keep = std::max(kMinLease, b.frame.capacity() + b.raw.capacity());
  if (b.leased <= keep) return;
  s_.budget_->Release(b.leased - keep);
  b.leased = keep;
}

void Server::Session::ArmDeadline() {
  if (!watch_) return;
  auto t = watch_->in_hello.load() ? s_.opts_.handshake_timeout : s_.opts_.idle_timeout;
  watch_->deadline_ms.store(internal::NowMs() + t.count());
}

Result<Frame> Server::Session::ReadFrame() {
  ArmDeadline();
  auto f = reader_.Read();
  if (watch_) watch_->deadline_ms.store(0);
  return f;
}

Status Server::Session::Hello() {
  WF_ASSIGN(Frame f, ReadFrame());
  if (TypeOf(f) != FrameType::kHello) {
    return Error(ErrorCode::kProtocol, "expected HELLO, got " + std::string(FrameTypeName(TypeOf(f))));
  }
  const auto& h = std::get<HelloFrame>(f);
  if (h.version != kProtocolVersion) {
    return Error(ErrorCode::kUnsupported, "protocol version " + std::to_string(h.version) +
                                              " not supported (this receiver speaks " +
                                              std::to_string(kProtocolVersion) + "); upgrade walferry");
  }
  cluster_ = conn_.peer_cluster();
  if (cluster_.empty()) {
    if (!s_.opts_.insecure) return Error(ErrorCode::kAuth, "connection has no client certificate");
    cluster_ = h.cluster.empty() ? "main" : h.cluster;
  }
  if (Status v = ValidateClusterName(cluster_); !v.ok()) {
    return Error(ErrorCode::kRefused, v.error().message());
  }
  return writer_.Write(HelloFrame{kProtocolVersion, kFeatureHave | kFeatureHaveProbe, cluster_});
}

std::string Server::Session::Prefix() const { return "serve: " + conn_.peer_address() + " cluster=" + cluster_; }

void Server::Session::Fail(const Error& e, const std::string& what) {
  s_.Log("serve: " + conn_.peer_address() + (cluster_.empty() ? "" : " cluster=" + cluster_) +
         (what.empty() ? "" : " " + what) + " error=" + std::string(ErrorCodeName(e.code())) + ": " +
         e.message());
  if (e.code() == ErrorCode::kNetwork && !busy_) return;  // busy_: "receiver busy" is told
  if (!writer_.Write(ErrorFrame{e.code(), e.message()}).ok()) return;
  conn_.SetTimeout(std::chrono::milliseconds(2000));
  std::vector<std::byte> sink(64 * 1024);
  std::size_t drained = 0;
  // Bounded in bytes and in time: a peer that dribbles forever is not read forever.
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000);
  while (drained < (64u << 20) && std::chrono::steady_clock::now() < end) {
    auto n = conn_.ReadSome(sink);
    if (!n.ok() || *n == 0) break;
    drained += *n;
  }
}

bool Server::Session::Keep(const std::string& what, const Error& e) {
  if (incoming_) {
    bool keep = e.code() == ErrorCode::kNetwork || e.code() == ErrorCode::kCorrupt ||
                e.code() == ErrorCode::kProtocol || e.code() == ErrorCode::kInternal;
    if (keep) {
      (void)incoming_->Sync();
    } else {
      incoming_->Abandon();
    }
    incoming_.reset();
  }
  Fail(e, what);
  return false;
}

bool Server::Session::Drop(const std::string& what, const Error& e) {
  if (incoming_) {
    incoming_->Abandon();
    incoming_.reset();
  }
  Fail(e, what);
  return false;
}

}  // namespace walferry::transport
