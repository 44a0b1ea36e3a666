// OpenSSL errors: the one converter to Error, and which handshake failures no
// retry can fix.
#include "transport/conn_internal.h"

namespace walferry::transport {
namespace internal {

// True for handshake failures that a retry cannot fix: the peer refused our
// certificate, we refused its, or the two sides share no protocol version.
// Not SSL_R_WRONG_VERSION_NUMBER: a record that is not TLS is what a flipped
// bit on the path gives as well as a port that does not speak TLS, and only
// the first is ever fixed by a retry (tests/campaigns/proxy.sh found it).
bool IsTrustFailure(unsigned long e) {  // NOLINT(runtime/int)
  if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL) return false;
  switch (ERR_GET_REASON(e)) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return true;
    default:
      return false;
  }
}

// The one place OpenSSL's error queue becomes an Error. Drains the queue.
Error SslError(ErrorCode code, std::string_view context, int ssl_error, int saved_errno) {
  std::string detail;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    const char* reason = ERR_reason_error_string(e);
    std::string r = reason ? reason : ("error " + std::to_string(ERR_GET_REASON(e)));
    if (detail.find(r) == std::string::npos) {
      if (!detail.empty()) detail += "; ";
      detail += r;
    }
  }
  if (detail.empty()) {
    if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0) {
      detail = std::strerror(saved_errno);
    } else if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN) {
      detail = "connection closed";
    } else if (ssl_error != 0) {
      detail = "TLS error " + std::to_string(ssl_error);
    } else {
      return Error(code, std::string(context));
    }
  }
  std::string msg(context);
  msg += ": ";
  msg += detail;
  return Error(code, std::move(msg));
}


}  // namespace internal

}  // namespace walferry::transport
