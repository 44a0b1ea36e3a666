// Helpers shared by transport/net.cc and transport/tls_init.cc; not a public API.
#pragma once

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

}  // namespace walferry::transport::internal
