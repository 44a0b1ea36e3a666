// `walferry tls init`: a small CA, a server certificate and client certificates
// made with OpenSSL's C API (no openssl(1) needed).
//
// Keys are Ed25519 (fast to make and to verify, supported by TLS 1.3 in
// OpenSSL 3). Certificates are X.509 v3 with the extensions a verifier checks:
//   CA:     basicConstraints critical CA:TRUE, pathlen:0; keyUsage keyCertSign,cRLSign
//   server: CA:FALSE; keyUsage digitalSignature; extendedKeyUsage serverAuth; SAN
//   client: CA:FALSE; keyUsage digitalSignature; extendedKeyUsage clientAuth; CN = cluster
// A client certificate therefore cannot pose as the server and vice versa.
// Every file is written to a temporary name, fsynced and renamed into place.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>

#include "core/fd.h"
#include "core/fs.h"
#include "core/names.h"
#include "transport/net.h"
#include "transport/net_internal.h"

namespace walferry::transport {
namespace {

constexpr long kValidDays = 3650;  // NOLINT(runtime/int)

struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// OpenSSL errors of `tls init`, through the one converter (net_internal.h).
Error CryptoError(std::string_view what) {
  return internal::SslError(ErrorCode::kInternal, "tls init: " + std::string(what));
}

Result<PkeyPtr> NewKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return CryptoError("generate Ed25519 key");
  return key;
}

Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return CryptoError("extension " + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return CryptoError("add extension " + value);
  return Status::Ok();
}

struct CertSpec {
  std::string cn;
  bool is_ca = false;
  std::string eku;   // "serverAuth" / "clientAuth" / ""
  std::string san;   // "DNS:localhost,IP:127.0.0.1" or ""
};

// Makes a certificate for `key`, signed by `issuer_key` (self-signed when
// issuer is null).
Result<X509Ptr> MakeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                         X509* copy_san_from = nullptr) {
  X509Ptr cert(X509_new());
  if (!cert) return CryptoError("X509_new");
  X509* x = cert.get();
  X509_set_version(x, X509_VERSION_3);
  // 127-bit random serial, positive.
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_new(), BN_free);
  if (!bn || !BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
      !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x))) {
    return CryptoError("serial number");
  }
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_time_adj_ex(X509_getm_notAfter(x), kValidDays, 0, nullptr);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("walferry"), -1, -1, 0);
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1,
                                  0)) {
    return CryptoError("subject name " + spec.cn);
  }
  X509* signer = issuer ? issuer : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  if (spec.is_ca) {
    WF_TRY(AddExt(x, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    WF_TRY(AddExt(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    WF_TRY(AddExt(x, signer, NID_basic_constraints, "critical,CA:FALSE"));
    WF_TRY(AddExt(x, signer, NID_key_usage, "critical,digitalSignature"));
  }
  if (!spec.eku.empty()) WF_TRY(AddExt(x, signer, NID_ext_key_usage, spec.eku));
  WF_TRY(AddExt(x, signer, NID_subject_key_identifier, "hash"));
  if (issuer) WF_TRY(AddExt(x, signer, NID_authority_key_identifier, "keyid:always"));
  if (!spec.san.empty()) WF_TRY(AddExt(x, signer, NID_subject_alt_name, spec.san));
  if (copy_san_from) {
    int idx = X509_get_ext_by_NID(copy_san_from, NID_subject_alt_name, -1);
    if (idx >= 0 && !X509_add_ext(x, X509_get_ext(copy_san_from, idx), -1)) {
      return CryptoError("copy subjectAltName");
    }
  }
  if (X509_sign(x, issuer_key ? issuer_key : key, nullptr) == 0) {  // Ed25519: no digest
    return CryptoError("sign certificate " + spec.cn);
  }
  return cert;
}

Result<std::string> PemOf(EVP_PKEY* key, X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return CryptoError("BIO_new");
  int ok = key ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_X509(bio.get(), cert);
  if (!ok) return CryptoError("PEM encode");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<std::size_t>(n));
}

// Writes `content` to dir/name atomically with exactly `mode` (core/fs.h's
// WriteAtomic). Refuses to replace an existing file unless `force`.
Status WriteFileAtomic(const std::string& dir, const std::string& name, const std::string& content,
                       mode_t mode, bool force) {
  const std::string path = dir + "/" + name;
  Status st = WriteAtomic(PosixFs(), AT_FDCWD, path, content, mode,
                          force ? Replace::kYes : Replace::kNo, path);
  if (!st.ok() && st.error().code() == ErrorCode::kExists) {
    return Error(ErrorCode::kExists, path + " exists (use --force to replace it)");
  }
  return st;
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

Result<PkeyPtr> LoadKey(const std::string& path) {
  WF_ASSIGN(std::string pem, ReadSmallFile(path, 1 << 20));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return CryptoError("read key " + path);
  return key;
}

Result<X509Ptr> LoadCert(const std::string& path) {
  WF_ASSIGN(std::string pem, ReadSmallFile(path, 1 << 20));
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return CryptoError("read certificate " + path);
  return cert;
}

std::string SanEntry(const std::string& name) {
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, name.c_str(), &a4) == 1 || inet_pton(AF_INET6, name.c_str(), &a6) == 1) {
    return "IP:" + name;
  }
  return "DNS:" + name;
}

bool ValidServerName(const std::string& n) {
  if (n.empty() || n.size() > 253) return false;
  for (char ch : n) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '.' || ch == ':' || ch == '*';
    if (!ok) return false;
  }
  return true;
}

Status WriteKeyAndCert(const std::string& dir, const std::string& base, EVP_PKEY* key, X509* cert,
                       bool force) {
  WF_ASSIGN(std::string key_pem, PemOf(key, nullptr));
  WF_ASSIGN(std::string cert_pem, PemOf(nullptr, cert));
  WF_TRY(WriteFileAtomic(dir, base + ".key", key_pem, 0600, force));
  return WriteFileAtomic(dir, base + ".crt", cert_pem, 0644, force);
}

Result<std::pair<PkeyPtr, X509Ptr>> LoadCa(const std::string& dir) {
  if (!Exists(dir + "/ca.key") || !Exists(dir + "/ca.crt")) {
    return Error(ErrorCode::kInvalidArgument, dir + " has no CA (ca.crt and ca.key); make one with: walferry tls init " +
                                                  dir);
  }
  WF_ASSIGN(PkeyPtr key, LoadKey(dir + "/ca.key"));
  WF_ASSIGN(X509Ptr cert, LoadCert(dir + "/ca.crt"));
  if (X509_check_private_key(cert.get(), key.get()) != 1) return CryptoError(dir + "/ca.key does not match ca.crt");
  return std::make_pair(std::move(key), std::move(cert));
}

std::string SerialHex(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr), BN_free);
  if (!bn) return "?";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex ? hex : "?";
  OPENSSL_free(hex);
  return out;
}

}  // namespace

Status RenewTlsCert(const std::string& dir, const std::string& which) {
  WF_ASSIGN(auto ca, LoadCa(dir));
  bool server = which == "server";
  if (!server && !ValidateClusterName(which).ok()) {
    return Error(ErrorCode::kInvalidArgument, "--renew needs \"server\" or a cluster name, not \"" + which + "\"");
  }
  std::string base = server ? "server" : "client-" + which;
  if (!Exists(dir + "/" + base + ".crt")) {
    return Error(ErrorCode::kNotFound, dir + "/" + base + ".crt does not exist" +
                                           (server ? std::string() : " (add the cluster with: walferry tls init " +
                                                                         dir + " --cluster " + which + ")"));
  }
  WF_ASSIGN(X509Ptr old, LoadCert(dir + "/" + base + ".crt"));
  WF_ASSIGN(PkeyPtr key, NewKey());
  X509Ptr cert;
  if (server) {
    WF_ASSIGN(cert, MakeCert({"walferry server", false, "serverAuth", ""}, key.get(), ca.second.get(),
                             ca.first.get(), old.get()));
  } else {
    WF_ASSIGN(cert, MakeCert({which, false, "clientAuth", ""}, key.get(), ca.second.get(), ca.first.get()));
  }
  WF_TRY(WriteKeyAndCert(dir, base, key.get(), cert.get(), true));
  return FsyncDir(dir);
}

namespace {

struct CrlDeleter {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
using CrlPtr = std::unique_ptr<X509_CRL, CrlDeleter>;

// Fills `crl` with the entries of `old` (may be null) and, unless already
// there, `victim`'s serial revoked at `now`.
Status CopyAndRevoke(X509_CRL* crl, X509_CRL* old, X509* victim, ASN1_TIME* now) {
  bool already = false;
  if (old) {
    STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(old);
    for (int i = 0; entries && i < sk_X509_REVOKED_num(entries); ++i) {
      X509_REVOKED* r = sk_X509_REVOKED_value(entries, i);
      if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(r), X509_get0_serialNumber(victim)) == 0) {
        already = true;
      }
      X509_REVOKED* copy = X509_REVOKED_dup(r);
      if (!copy || !X509_CRL_add0_revoked(crl, copy)) return CryptoError("copy CRL entry");
    }
  }
  if (!already) {
    X509_REVOKED* r = X509_REVOKED_new();
    if (!r || !X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(victim)) ||
        !X509_REVOKED_set_revocationDate(r, now) || !X509_CRL_add0_revoked(crl, r)) {
      X509_REVOKED_free(r);
      return CryptoError("add CRL entry");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> RevokeTlsClient(const std::string& dir, const std::string& cluster) {
  if (!ValidateClusterName(cluster).ok()) {
    return Error(ErrorCode::kInvalidArgument, "invalid cluster name \"" + cluster + "\"");
  }
  WF_ASSIGN(auto ca, LoadCa(dir));
  std::string crt = dir + "/client-" + cluster + ".crt";
  if (!Exists(crt)) return Error(ErrorCode::kNotFound, crt + " does not exist");
  WF_ASSIGN(X509Ptr victim, LoadCert(crt));
  CrlPtr old;
  std::string crl_path = dir + "/crl.pem";
  if (Exists(crl_path)) {
    WF_ASSIGN(std::string pem, ReadSmallFile(crl_path, 16 << 20));
    BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    old.reset(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!old) return CryptoError("read " + crl_path);
  }
  CrlPtr crl(X509_CRL_new());
  if (!crl) return CryptoError("X509_CRL_new");
  X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca.second.get()));
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> now(ASN1_TIME_new(), ASN1_TIME_free);
  std::unique_ptr<ASN1_TIME, decltype(&ASN1_TIME_free)> next(ASN1_TIME_new(), ASN1_TIME_free);
  X509_gmtime_adj(now.get(), 0);
  X509_time_adj_ex(next.get(), kValidDays, 0, nullptr);
  X509_CRL_set1_lastUpdate(crl.get(), now.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  WF_TRY(CopyAndRevoke(crl.get(), old.get(), victim.get(), now.get()));
  X509_CRL_sort(crl.get());
  if (X509_CRL_sign(crl.get(), ca.first.get(), nullptr) == 0) return CryptoError("sign CRL");
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_X509_CRL(bio.get(), crl.get())) return CryptoError("PEM encode CRL");
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  WF_TRY(WriteFileAtomic(dir, "crl.pem", std::string(data, static_cast<std::size_t>(n)), 0644, true));
  // The revoked pair leaves the client-<cluster> names, so the cluster can get a new one.
  std::string serial = SerialHex(victim.get());
  std::string kept = dir + "/revoked-client-" + cluster + "-" + serial + ".crt";
  if (::rename(crt.c_str(), kept.c_str()) != 0) return ErrnoError(errno, "rename " + crt);
  ::unlink((dir + "/client-" + cluster + ".key").c_str());
  WF_TRY(FsyncDir(dir));
  return serial;
}

namespace internal {

Result<std::vector<std::string>> ListClientClusters(const std::string& dir) {
  UniqueDir d(::opendir(dir.c_str()));
  if (!d) {
    return Error(ErrorCode::kInvalidArgument,
                 "TLS directory " + dir + ": " + std::strerror(errno));
  }
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d.get())) {
    std::string_view n(e->d_name);
    if (n.size() > 11 && n.substr(0, 7) == "client-" && n.substr(n.size() - 4) == ".crt") {
      std::string c(n.substr(7, n.size() - 11));
      if (ValidateClusterName(c).ok()) out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace internal

namespace {

// The server certificate's subjectAltName: localhost, the loopback
// addresses, this host's name and `server_names`, each once.
Result<std::string> SubjectAltNames(const std::vector<std::string>& server_names) {
  std::vector<std::string> names = {"localhost", "127.0.0.1", "::1"};
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0 && host[0] && ValidServerName(host)) {
    names.push_back(host);
  }
  for (const auto& n : server_names) {
    if (!ValidServerName(n)) {
      return Error(ErrorCode::kInvalidArgument, "invalid server name \"" + n + "\"");
    }
    names.push_back(n);
  }
  std::string san;
  std::vector<std::string> seen;
  for (const auto& n : names) {
    if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
    seen.push_back(n);
    san += (san.empty() ? "" : ",") + SanEntry(n);
  }
  return san;
}

// DIR (and its parents) created, a directory, mode 0700.
Status MakePrivateDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path parent = std::filesystem::path(dir).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);  // as mkdir -p
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError(errno, "create TLS directory " + dir);
  }
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return ErrnoError(errno, dir);
  if (!S_ISDIR(st.st_mode)) return Error(ErrorCode::kInvalidArgument, dir + " is not a directory");
  if (::chmod(dir.c_str(), 0700) != 0) return ErrnoError(errno, "chmod " + dir);
  return Status::Ok();
}

// kExists when a client pair of `clusters` exists, or half a CA.
Status RefuseReplacing(const std::string& dir, const std::vector<std::string>& clusters) {
  for (const auto& c : clusters) {
    std::string p = dir + "/client-" + c + ".crt";
    if (Exists(p) || Exists(dir + "/client-" + c + ".key")) {
      return Error(ErrorCode::kExists, p + " exists (use --force to replace it)");
    }
  }
  bool has_crt = Exists(dir + "/ca.crt"), has_key = Exists(dir + "/ca.key");
  if (has_crt != has_key) {
    return Error(ErrorCode::kExists,
                 dir + " holds only half of a CA (ca.crt/ca.key); use --force to replace it");
  }
  return Status::Ok();
}

}  // namespace

Status InitTlsDir(const std::string& dir, const std::vector<std::string>& clusters_in,
                  const std::vector<std::string>& server_names, bool force) {
  std::vector<std::string> clusters = clusters_in;
  if (clusters.empty()) clusters.push_back("main");
  for (const auto& c : clusters) {
    if (!ValidateClusterName(c).ok()) {
      return Error(ErrorCode::kInvalidArgument,
                   "invalid cluster name \"" + c +
                       "\" (1-64 letters, digits, '.', '_' or '-'; not starting with '.' or '-')");
    }
  }
  WF_ASSIGN(const std::string san, SubjectAltNames(server_names));

  WF_TRY(MakePrivateDir(dir));

  // Without --force: nothing that exists is replaced. An existing CA is reused
  // (so clusters can be added later); an existing server certificate is kept.
  if (!force) WF_TRY(RefuseReplacing(dir, clusters));

  PkeyPtr ca_key;
  X509Ptr ca_cert;
  if (!force && Exists(dir + "/ca.crt")) {
    WF_ASSIGN(ca_key, LoadKey(dir + "/ca.key"));
    WF_ASSIGN(ca_cert, LoadCert(dir + "/ca.crt"));
    if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
      return CryptoError(dir + "/ca.key does not match ca.crt");
    }
  } else {
    WF_ASSIGN(ca_key, NewKey());
    WF_ASSIGN(ca_cert, MakeCert({"walferry CA", true, "", ""}, ca_key.get(), nullptr, nullptr));
    WF_TRY(WriteKeyAndCert(dir, "ca", ca_key.get(), ca_cert.get(), force));
  }

  if (force || !Exists(dir + "/server.crt")) {
    WF_ASSIGN(PkeyPtr key, NewKey());
    WF_ASSIGN(X509Ptr cert, MakeCert({"walferry server", false, "serverAuth", san}, key.get(),
                                     ca_cert.get(), ca_key.get()));
    WF_TRY(WriteKeyAndCert(dir, "server", key.get(), cert.get(), force));
  }

  for (const auto& c : clusters) {
    WF_ASSIGN(PkeyPtr key, NewKey());
    WF_ASSIGN(X509Ptr cert,
              MakeCert({c, false, "clientAuth", ""}, key.get(), ca_cert.get(), ca_key.get()));
    WF_TRY(WriteKeyAndCert(dir, "client-" + c, key.get(), cert.get(), force));
  }
  return FsyncDir(dir);
}

}  // namespace walferry::transport
