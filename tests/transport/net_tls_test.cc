// transport/net.h over real sockets on 127.0.0.1 and ::1 with certificates
// made by InitTlsDir in a temporary directory.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "transport/net.h"
#include "tests/support/string_bytes.h"

namespace walferry::transport {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

using testing_support::Bytes;

class NetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/wf-net-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = new std::string(tmpl);
    Status st = InitTlsDir(*root_ + "/tls", {"main", "other"}, {}, false);
    ASSERT_TRUE(st.ok()) << st.error().message();
    st = InitTlsDir(*root_ + "/foreign", {"main"}, {}, false);
    ASSERT_TRUE(st.ok()) << st.error().message();
    // One client certificate only, from the right CA.
    fs::create_directory(*root_ + "/one");
    for (const char* f : {"ca.crt", "client-main.crt", "client-main.key"}) {
      fs::copy_file(*root_ + "/tls/" + f, *root_ + "/one/" + f);
    }
    // Trusts the right CA but presents a client certificate from a foreign CA.
    fs::create_directory(*root_ + "/mixed");
    fs::copy_file(*root_ + "/tls/ca.crt", *root_ + "/mixed/ca.crt");
    fs::copy_file(*root_ + "/foreign/client-main.crt", *root_ + "/mixed/client-main.crt");
    fs::copy_file(*root_ + "/foreign/client-main.key", *root_ + "/mixed/client-main.key");
  }
  static void TearDownTestSuite() {
    fs::remove_all(*root_);
    delete root_;
  }
  static std::string Dir(const std::string& d) { return *root_ + "/" + d; }

  // Listens on host:0 with the server side of the "tls" dir.
  std::unique_ptr<Listener> ListenOn(const std::string& host, bool insecure = false) {
    TlsConfig cfg;
    if (insecure) {
      cfg.insecure_loopback = true;
    } else {
      cfg.tls_dir = Dir("tls");
    }
    auto l = Listen({host, 0}, cfg);
    EXPECT_TRUE(l.ok()) << l.error().message();
    return l.ok() ? std::move(l).value() : nullptr;
  }

  static std::string* root_;
};
std::string* NetTest::root_ = nullptr;

// Accepts one connection on a thread; the result is available after join().
struct AcceptOne {
  explicit AcceptOne(Listener* l) : thread([this, l] { result.emplace(l->Accept()); }) {}
  ~AcceptOne() {
    if (thread.joinable()) thread.join();
  }
  Result<std::unique_ptr<Conn>>& Get() {
    thread.join();
    return *result;
  }
  std::optional<Result<std::unique_ptr<Conn>>> result;
  std::thread thread;
};

void RoundTrip(Conn& client, Conn& server) {
  std::string msg = "hello walferry";
  ASSERT_TRUE(client.WriteAll(Bytes(msg)).ok());
  std::string got(msg.size(), '\0');
  Status st = server.ReadExact(std::as_writable_bytes(std::span(got.data(), got.size())));
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_EQ(got, msg);
  // Larger than one TLS record, the other way.
  std::string big(1 << 20, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 4096);
  std::thread writer([&] { EXPECT_TRUE(server.WriteAll(Bytes(big)).ok()); });
  std::string back(big.size(), '\0');
  st = client.ReadExact(std::as_writable_bytes(std::span(back.data(), back.size())));
  writer.join();
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_TRUE(back == big);
}

TEST_F(NetTest, HandshakeIpv4PeerClusterIsCn) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  auto c = Connect({"127.0.0.1", l->port()}, {Dir("tls"), "other", false});
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto& s = acc.Get();
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ((*s)->peer_cluster(), "other");
  EXPECT_NE((*s)->peer_address().find("127.0.0.1"), std::string::npos);
  RoundTrip(**c, **s);
  // Orderly close: the server reads EOF.
  c->reset();
  std::byte b[4];
  auto n = (*s)->ReadSome(b);
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(*n, 0u);
}

TEST_F(NetTest, HandshakeIpv6SingleClientCertificate) {
  auto l = ListenOn("::1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  auto c = Connect({"::1", l->port()}, {Dir("one"), "", false});
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto& s = acc.Get();
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ((*s)->peer_cluster(), "main");
  RoundTrip(**c, **s);
}

TEST_F(NetTest, SeveralClientCertificatesNeedCluster) {
  auto c = Connect({"127.0.0.1", 1}, {Dir("tls"), "", false});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(c.error().message().find("--cluster"), std::string::npos) << c.error().message();
  auto d = Connect({"127.0.0.1", 1}, {Dir("tls"), "nosuch", false});
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(NetTest, ForeignCaClientRefused) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  auto c = Connect({"127.0.0.1", l->port()}, {Dir("mixed"), "", false});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kAuth) << c.error().message();
  EXPECT_NE(c.error().message().find("certificate refused"), std::string::npos)
      << c.error().message();
  auto& s = acc.Get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kAuth) << s.error().message();
}

TEST_F(NetTest, ClientRefusesServerFromForeignCa) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  auto c = Connect({"127.0.0.1", l->port()}, {Dir("foreign"), "", false});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kAuth) << c.error().message();
  EXPECT_FALSE(acc.Get().ok());
}

// A raw OpenSSL client; returns true when the server accepted it (the
// handshake finished and the server's ticket or data arrived without alert).
bool RawClient(int port, int max_version, const std::string& cert_dir) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(ctx, max_version);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  if (!cert_dir.empty()) {
    SSL_CTX_use_certificate_file(ctx, (cert_dir + "/client-main.crt").c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx, (cert_dir + "/client-main.key").c_str(), SSL_FILETYPE_PEM);
  }
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = false;
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    timeval tv{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      char c;
      std::size_t got = 0;
      // The server sends a ticket (accepted) or an alert (refused): an alert
      // fails the read at once; no alert within the 1 s receive timeout means
      // accepted.
      int r = SSL_peek_ex(ssl, &c, 1, &got);
      int err = SSL_get_error(ssl, r);
      ok = r == 1 || err == SSL_ERROR_WANT_READ ||
           (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
    SSL_free(ssl);
  }
  close(fd);
  SSL_CTX_free(ctx);
  ERR_clear_error();
  return ok;
}

TEST_F(NetTest, RawClientWithCertificateAccepted) {
  // Control for the two tests below: the same raw client with a valid
  // certificate over TLS 1.3 is accepted.
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  EXPECT_TRUE(RawClient(l->port(), TLS1_3_VERSION, Dir("tls")));
  EXPECT_TRUE(acc.Get().ok());
}

TEST_F(NetTest, ClientWithoutCertificateRefused) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  EXPECT_FALSE(RawClient(l->port(), TLS1_3_VERSION, ""));
  auto& s = acc.Get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kAuth) << s.error().message();
}

TEST_F(NetTest, Tls12ClientRefused) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  EXPECT_FALSE(RawClient(l->port(), TLS1_2_VERSION, Dir("tls")));
  auto& s = acc.Get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kAuth) << s.error().message();
}

// A peer whose answer is not TLS (a plain service on the port, or bytes
// damaged on the way) is a network error, retried by senders, never a
// certificate refusal.
TEST_F(NetTest, NonTlsAnswerIsANetworkErrorNotARefusal) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(lfd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::thread plain([lfd] {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) return;
    char buf[512];
    (void)::read(c, buf, sizeof buf);  // the ClientHello
    const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    (void)::write(c, answer, sizeof answer - 1);
    ::close(c);
  });
  auto c = Connect({"127.0.0.1", ntohs(addr.sin_port)}, {Dir("one"), "", false});
  plain.join();
  ::close(lfd);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kNetwork) << c.error().message();
  EXPECT_NE(c.error().message().find("not TLS"), std::string::npos) << c.error().message();
  EXPECT_EQ(c.error().message().find("certificate"), std::string::npos) << c.error().message();
}

TEST_F(NetTest, ListenerKeepsAcceptingAfterRefusal) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  {
    AcceptOne acc(l.get());
    EXPECT_FALSE(Connect({"127.0.0.1", l->port()}, {Dir("mixed"), "", false}).ok());
    EXPECT_FALSE(acc.Get().ok());
  }
  AcceptOne acc(l.get());
  auto c = Connect({"127.0.0.1", l->port()}, {Dir("one"), "", false});
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(acc.Get().ok());
}

TEST_F(NetTest, InsecureRefusesNonLoopbackBeforeAnyPacket) {
  // 192.0.2.1 is TEST-NET-1: were a packet sent, connect would hang or fail
  // with a network error, not kInvalidArgument.
  for (const char* host : {"192.0.2.1", "10.0.0.1", "2001:db8::1", "example.invalid"}) {
    auto c = Connect({host, 7420}, {"", "", true});
    ASSERT_FALSE(c.ok()) << host;
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument) << c.error().message();
    auto l = Listen({host, 0}, {"", "", true});
    ASSERT_FALSE(l.ok()) << host;
    EXPECT_EQ(l.error().code(), ErrorCode::kInvalidArgument) << l.error().message();
  }
  auto any = Listen({"0.0.0.0", 0}, {"", "", true});
  ASSERT_FALSE(any.ok());
  EXPECT_EQ(any.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(NetTest, InsecureLoopbackWorks) {
  for (const char* host : {"127.0.0.1", "::1"}) {
    auto l = ListenOn(host, true);
    ASSERT_TRUE(l);
    AcceptOne acc(l.get());
    auto c = Connect({host, l->port()}, {"", "", true});
    ASSERT_TRUE(c.ok()) << c.error().message();
    auto& s = acc.Get();
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ((*s)->peer_cluster(), "");
    RoundTrip(**c, **s);
  }
}

TEST_F(NetTest, UnreachablePortIsNetworkError) {
  int port;
  {
    auto l = ListenOn("127.0.0.1", true);
    ASSERT_TRUE(l);
    port = l->port();
  }  // closed: nothing listens there now
  for (bool insecure : {true, false}) {
    TlsConfig cfg{insecure ? "" : Dir("one"), "", insecure};
    auto c = Connect({"127.0.0.1", port}, cfg);
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), ErrorCode::kNetwork);
    EXPECT_NE(c.error().message().find("cannot reach 127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << c.error().message();
  }
}

TEST_F(NetTest, StalledPeerTimesOut) {
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  auto c = Connect({"127.0.0.1", l->port()}, {Dir("one"), "", false});
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto& s = acc.Get();
  ASSERT_TRUE(s.ok());
  (*c)->SetTimeout(milliseconds(200));
  std::byte b[16];
  auto n = (*c)->ReadSome(b);  // the server never writes
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code(), ErrorCode::kNetwork);
  EXPECT_NE(n.error().message().find("timed out"), std::string::npos) << n.error().message();
  // The server side: a writer whose peer never reads times out too.
  (*s)->SetTimeout(milliseconds(300));
  std::string chunk(1 << 20, 'z');
  Status st;
  for (int i = 0; i < 256 && st.ok(); ++i) st = (*s)->WriteAll(Bytes(chunk));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code(), ErrorCode::kNetwork);
  EXPECT_NE(st.error().message().find("timed out"), std::string::npos) << st.error().message();
}

TEST_F(NetTest, StalledTlsHandshakeTimesOutOnServer) {
  // A client that connects and sends nothing must not hold the listener
  // forever; Close() from another thread ends the wait at once.
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(l->port()));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  AcceptOne acc(l.get());
  std::this_thread::sleep_for(milliseconds(100));
  l->Close();
  auto& s = acc.Get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kNetwork);
  close(fd);
  // After Close, Accept returns at once.
  auto again = l->Accept();
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message().find("listener closed"), std::string::npos);
}

TEST_F(NetTest, StalledHandshakeDoesNotBlockOthers) {
  // Two clients connect and send nothing; an honest client connecting after
  // them is handed out by the very next Accept (handshakes run side by side).
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  std::vector<int> idle;
  for (int i = 0; i < 2; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(l->port()));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    idle.push_back(fd);
  }
  std::this_thread::sleep_for(milliseconds(50));
  AcceptOne acc(l.get());
  auto c = Connect({"127.0.0.1", l->port()}, {Dir("one"), "", false});
  ASSERT_TRUE(c.ok()) << c.error().message();
  auto& s = acc.Get();
  ASSERT_TRUE(s.ok()) << s.error().message();
  EXPECT_EQ((*s)->peer_cluster(), "main");
  RoundTrip(**c, **s);
  for (int fd : idle) close(fd);
}

TEST_F(NetTest, ShutdownFromAnotherThreadUnblocksReader) {
  for (bool insecure : {false, true}) {
    auto l = ListenOn("127.0.0.1", insecure);
    ASSERT_TRUE(l);
    AcceptOne acc(l.get());
    auto c = Connect({"127.0.0.1", l->port()}, {insecure ? "" : Dir("one"), "", insecure});
    ASSERT_TRUE(c.ok()) << c.error().message();
    auto& s = acc.Get();
    ASSERT_TRUE(s.ok());
    Conn* server = s->get();
    std::atomic<bool> done{false};
    Result<std::size_t> got = std::size_t{0};
    std::thread reader([&] {
      std::byte b[16];
      got = server->ReadSome(b);  // default 60 s timeout: only Shutdown ends it
      done = true;
    });
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_FALSE(done.load());
    server->Shutdown();
    reader.join();
    EXPECT_TRUE(!got.ok() || *got == 0);
  }
}

TEST_F(NetTest, ListenerCloseUnblocksAccept) {
  auto l = ListenOn("::1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  std::this_thread::sleep_for(milliseconds(50));
  l->Close();
  auto& s = acc.Get();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kNetwork);
}

TEST_F(NetTest, MissingTlsDirIsClearError) {
  auto c = Connect({"127.0.0.1", 1}, {Dir("nope"), "", false});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
  auto l = Listen({"127.0.0.1", 0}, {Dir("one"), "", false});  // no server.crt there
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(l.error().message().find("tls init"), std::string::npos) << l.error().message();
}

TEST_F(NetTest, ParseEndpoint) {
  auto a = ParseEndpoint("127.0.0.1:7420");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 7420);
  auto b = ParseEndpoint("[::1]:80");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "::1");
  EXPECT_EQ(b->port, 80);
  auto c = ParseEndpoint("standby.example:7420");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "standby.example");
  for (const char* bad : {"", "host", ":80", "::1:80", "[::1]", "[::1]80", "h:99999", "h:8x",
                          "h:", "[nothost]:1", "a b:1"}) {
    EXPECT_FALSE(ParseEndpoint(bad).ok()) << bad;
  }
  EXPECT_TRUE(IsLoopback({"127.0.0.1", 1}));
  EXPECT_TRUE(IsLoopback({"127.8.9.10", 1}));
  EXPECT_TRUE(IsLoopback({"::1", 1}));
  EXPECT_TRUE(IsLoopback({"localhost", 1}));
  EXPECT_FALSE(IsLoopback({"128.0.0.1", 1}));
  EXPECT_FALSE(IsLoopback({"::", 1}));
  EXPECT_FALSE(IsLoopback({"0.0.0.0", 1}));
  EXPECT_FALSE(IsLoopback({"localhost.example.com", 1}));
}

TEST_F(NetTest, KeyFileModes) {
  for (const char* f : {"ca.key", "server.key", "client-main.key", "client-other.key"}) {
    struct stat st;
    ASSERT_EQ(stat((Dir("tls") + "/" + f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  struct stat st;
  ASSERT_EQ(stat(Dir("tls").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(NetTest, InitRefusesOverwriteAddsClusterWithSameCa) {
  std::string d = Dir("init2");
  ASSERT_TRUE(InitTlsDir(d, {}, {"standby.example", "192.0.2.7"}, false).ok());
  auto ca_before = fs::last_write_time(d + "/ca.crt");
  Status again = InitTlsDir(d, {}, {}, false);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kExists);
  ASSERT_TRUE(InitTlsDir(d, {"second"}, {}, false).ok());
  EXPECT_EQ(fs::last_write_time(d + "/ca.crt"), ca_before);
  ASSERT_TRUE(InitTlsDir(d, {}, {}, true).ok());
  EXPECT_FALSE(InitTlsDir(d, {"../evil"}, {}, false).ok());
  EXPECT_FALSE(InitTlsDir(d, {"a b"}, {}, false).ok());
  // A client certificate added later (same CA) is accepted by the server.
  auto l = Listen({"127.0.0.1", 0}, {d, "", false});
  ASSERT_TRUE(l.ok()) << l.error().message();
  AcceptOne acc(l->get());
  auto c = Connect({"127.0.0.1", (*l)->port()}, {d, "second", false});
  // --force replaced the CA, so "second" (signed by the old CA) is refused.
  EXPECT_FALSE(c.ok());
  EXPECT_FALSE(acc.Get().ok());
}

TEST_F(NetTest, ServerNameIsVerified) {
  // The server certificate names localhost, 127.0.0.1 and ::1: connecting
  // through "localhost" works; key files readable by others are refused.
  auto l = ListenOn("127.0.0.1");
  ASSERT_TRUE(l);
  AcceptOne acc(l.get());
  auto c = Connect({"localhost", l->port()}, {Dir("one"), "", false});
  ASSERT_TRUE(c.ok()) << c.error().message();
  ASSERT_TRUE(acc.Get().ok());
  std::string d = Dir("loose");
  fs::create_directory(d);
  for (const char* f : {"ca.crt", "client-main.crt", "client-main.key"}) {
    fs::copy_file(Dir("tls") + "/" + f, d + "/" + f);
  }
  chmod((d + "/client-main.key").c_str(), 0644);
  auto bad = Connect({"127.0.0.1", l->port()}, {d, "", false});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message().find("chmod 600"), std::string::npos) << bad.error().message();
}

}  // namespace
}  // namespace walferry::transport
