// TLS 1.3 session resumption for short-lived clients (`walferry push`): the
// session (ticket + resumption secret) the receiver issued on the last
// connection is kept in a file and offered on the next one, which skips the
// certificate exchange and signatures of a full handshake.
//
// The file holds a secret: it is created mode 0600 inside a directory of mode
// 0700 owned by the calling user that holds nothing but session files. A file
// or directory with other owners or looser modes is ignored (never trusted,
// never written). Losing, corrupting or racing on the file only costs a full
// handshake: every function here is best effort and never fails the caller.
//
// Thread/process safety: concurrent writers each write a private temp file
// and rename it into place, so a reader sees one whole session or none.
#pragma once

#include <string>

typedef struct ssl_session_st SSL_SESSION;

namespace walferry::transport {

// The default cache file for (host, port, cluster):
// $XDG_CACHE_HOME/walferry/tls-sessions/<host>_<port>_<cluster> (or under
// $HOME/.cache). "" when neither variable names a usable directory.
std::string DefaultSessionFile(const std::string& host, int port, const std::string& cluster);

namespace internal {
// A session read from `path`, or nullptr (absent, unsafe permissions, corrupt,
// expired). The caller owns the result (SSL_SESSION_free).
SSL_SESSION* LoadTlsSession(const std::string& path);
// Stores `session` at `path` (creating the parent directory 0700). Silent on failure.
void SaveTlsSession(const std::string& path, SSL_SESSION* session);
}  // namespace internal

}  // namespace walferry::transport
