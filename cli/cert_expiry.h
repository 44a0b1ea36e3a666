// How long the TLS files made by `walferry tls init` stay valid (for
// `walferry check`). OpenSSL is asked directly; nothing is verified here
// beyond the validity dates (the handshake verifies the chain).
#pragma once

#include <string>

#include "core/result.h"

namespace walferry::cli {

struct CertValidity {
  std::string path;
  std::string not_after;   // "2036-11-29 09:02:51 UTC"
  long long days_left = 0; // negative once expired
  bool not_yet_valid = false;
};

// kIo when the file cannot be read, kCorrupt when it is not a PEM certificate.
Result<CertValidity> ReadCertValidity(const std::string& path);

}  // namespace walferry::cli
