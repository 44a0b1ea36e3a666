#include "cli/cert_expiry.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "core/fd.h"

namespace walferry::cli {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};

std::string TimeText(const ASN1_TIME* t) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || ASN1_TIME_print(bio.get(), t) != 1) return "?";
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : "?";
}

}  // namespace

Result<CertValidity> ReadCertValidity(const std::string& path) {
  WF_ASSIGN(std::string pem, ReadSmallFile(path, 1 << 20));
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Error(ErrorCode::kInternal, "out of memory reading " + path);
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Error(ErrorCode::kCorrupt, path + " is not a PEM certificate");
  CertValidity v;
  v.path = path;
  const ASN1_TIME* after = X509_get0_notAfter(cert.get());
  const ASN1_TIME* before = X509_get0_notBefore(cert.get());
  v.not_after = TimeText(after);
  int days = 0, secs = 0;
  if (ASN1_TIME_diff(&days, &secs, nullptr, after) != 1) {
    return Error(ErrorCode::kCorrupt, path + ": unreadable expiry date");
  }
  v.days_left = days;
  if (days == 0 && secs < 0) v.days_left = -1;
  v.not_yet_valid = X509_cmp_current_time(before) > 0;
  return v;
}

}  // namespace walferry::cli
