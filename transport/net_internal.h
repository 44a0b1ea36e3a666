// Helpers shared by transport/net.cc and transport/tls_init.cc; not a public API.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace walferry::transport::internal {

// Clusters that have a client-<cluster>.crt in `dir`, sorted.
Result<std::vector<std::string>> ListClientClusters(const std::string& dir);

}  // namespace walferry::transport::internal
