// Session cache file: DER of SSL_SESSION (i2d_SSL_SESSION), written to a temp
// file in the same directory and renamed into place.
#include "transport/tls_session.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "core/fd.h"

namespace walferry::transport {
namespace {

constexpr std::size_t kMaxSessionBytes = 64 * 1024;

std::string Parent(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// A directory owned by us with no group/other access.
bool PrivateDir(const std::string& dir) {
  struct stat st{};
  return ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid() &&
         (st.st_mode & 077) == 0;
}

// mkdir -p with mode 0700 for the parts we create.
bool EnsurePrivateDir(const std::string& dir) {
  if (PrivateDir(dir)) return true;
  std::string parent = Parent(dir);
  struct stat st{};
  if (parent != dir && ::stat(parent.c_str(), &st) != 0 && !EnsurePrivateDir(parent)) return false;
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  return PrivateDir(dir);
}

std::string SafeComponent(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '-';
    out += ok ? c : '_';
  }
  return out.empty() ? std::string("_") : out;
}

}  // namespace

std::string DefaultSessionFile(const std::string& host, int port, const std::string& cluster) {
  std::string base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && x[0] == '/') {
    base = x;
  } else if (const char* h = std::getenv("HOME"); h && h[0] == '/') {
    base = std::string(h) + "/.cache";
  } else {
    return "";
  }
  return base + "/walferry/tls-sessions/" + SafeComponent(host) + "_" + std::to_string(port) + "_" +
         SafeComponent(cluster.empty() ? std::string("default") : cluster);
}

namespace internal {

SSL_SESSION* LoadTlsSession(const std::string& path) {
  if (path.empty() || !PrivateDir(Parent(path))) return nullptr;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return nullptr;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 077) != 0 || st.st_size <= 0 || static_cast<std::size_t>(st.st_size) > kMaxSessionBytes) {
    return nullptr;
  }
  std::vector<unsigned char> buf(static_cast<std::size_t>(st.st_size));
  auto n = ReadFull(fd.get(), std::as_writable_bytes(std::span(buf)), path);
  if (!n.ok() || *n != buf.size()) return nullptr;
  const unsigned char* p = buf.data();
  SSL_SESSION* s = d2i_SSL_SESSION(nullptr, &p, static_cast<long>(buf.size()));  // NOLINT(runtime/int)
  if (!s) return nullptr;
  if (p != buf.data() + buf.size() || !SSL_SESSION_is_resumable(s) ||
      SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s) <= std::time(nullptr)) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

void SaveTlsSession(const std::string& path, SSL_SESSION* session) {
  if (path.empty() || !session || !SSL_SESSION_is_resumable(session)) return;
  int len = i2d_SSL_SESSION(session, nullptr);
  if (len <= 0 || static_cast<std::size_t>(len) > kMaxSessionBytes) return;
  std::vector<unsigned char> buf(static_cast<std::size_t>(len));
  unsigned char* p = buf.data();
  if (i2d_SSL_SESSION(session, &p) != len) return;
  if (!EnsurePrivateDir(Parent(path))) return;
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd.valid()) return;
  // No fsync: a session lost in a crash costs one full handshake.
  bool ok = WriteFull(fd.get(), std::as_bytes(std::span(buf)), tmp).ok() && ::fchmod(fd.get(), 0600) == 0;
  fd.Reset();
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace internal
}  // namespace walferry::transport
