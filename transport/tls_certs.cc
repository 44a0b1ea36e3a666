// Certificate facts shared by the connection code (conn_internal.h, tls_context.cc) and `walferry tls`
// (tls_init.cc): validity windows in words, and the CRL a receiver loads.
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "core/fd.h"
#include "transport/net.h"
#include "transport/net_internal.h"

namespace walferry::transport::internal {

std::string CertTimeText(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return "an unreadable time";
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string CertValidityProblem(X509* cert) {
  if (!cert) return "";
  const ASN1_TIME* not_after = X509_get0_notAfter(cert);
  const ASN1_TIME* not_before = X509_get0_notBefore(cert);
  if (X509_cmp_current_time(not_after) <= 0) return "expired at " + CertTimeText(not_after);
  if (X509_cmp_current_time(not_before) >= 0) return "not valid before " + CertTimeText(not_before);
  return "";
}

std::string CertSubjectCn(X509* cert) {
  if (!cert) return "?";
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return "?";
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
  if (n < 0) return "?";
  std::string cn(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(n));
  OPENSSL_free(utf8);
  return cn;
}

Result<int> LoadCrls(SSL_CTX* ctx, const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) return 0;
  WF_ASSIGN(std::string pem, ReadSmallFile(path, 16 << 20));
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                BIO_free);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int revoked = 0, crls = 0;
  ERR_clear_error();
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    ++crls;
    if (STACK_OF(X509_REVOKED)* r = X509_CRL_get_REVOKED(crl)) revoked += sk_X509_REVOKED_num(r);
    int ok = X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    if (ok != 1) {
      ERR_clear_error();
      return Error(ErrorCode::kInvalidArgument, "TLS CRL " + path + ": cannot add it to the trust store");
    }
  }
  ERR_clear_error();
  if (crls == 0) return Error(ErrorCode::kInvalidArgument, "TLS CRL " + path + " holds no CRL");
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  return revoked;
}

}  // namespace walferry::transport::internal

namespace walferry::transport {

std::string CertLifetimeProblem(const std::string& path) {
  auto pem = ReadSmallFile(path, 1 << 20);
  if (!pem.ok()) return "";
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())),
                                                BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr),
                                                   X509_free);
  ERR_clear_error();
  if (!cert) return "";
  std::string p = internal::CertValidityProblem(cert.get());
  if (p.empty()) return "";
  return path + " (\"" + internal::CertSubjectCn(cert.get()) + "\") " + p;
}

}  // namespace walferry::transport
