// Helpers shared by the connection code (conn_internal.h, tls_*.cc) and transport/tls_init.cc; not a public API.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace walferry::transport::internal {

// The one place OpenSSL's error queue becomes an Error ("CONTEXT: reasons");
// drains the queue. With an empty queue, `ssl_error` (SSL_get_error) and
// `saved_errno` explain a failed I/O call; with neither, the message is CONTEXT.
Error SslError(ErrorCode code, std::string_view context, int ssl_error = 0, int saved_errno = 0);

// Clusters that have a client-<cluster>.crt in `dir`, sorted.
Result<std::vector<std::string>> ListClientClusters(const std::string& dir);

// "2026-12-01 09:00:00 UTC".
std::string CertTimeText(const ASN1_TIME* t);
// "" while `cert` is valid now; else "expired at TIME" / "not valid before TIME".
std::string CertValidityProblem(X509* cert);
// The subject CN, or "?".
std::string CertSubjectCn(X509* cert);
// Adds the CRLs in the PEM file `path` (DIR/crl.pem, written by
// `walferry tls init --revoke`) to ctx's trust store and turns on CRL checks
// of the peer's certificate. No file: nothing changes, returns 0. Returns the
// number of revoked serials; kInvalidArgument for an unreadable file.
Result<int> LoadCrls(SSL_CTX* ctx, const std::string& path);

}  // namespace walferry::transport::internal
