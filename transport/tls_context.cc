// TLS 1.3 contexts from a TLS directory (`walferry tls init`): CA, certificate,
// key (mode checked), CRLs; which client certificate a connection presents.
#include "transport/conn_internal.h"

namespace walferry::transport {
namespace internal {

// ---- TLS contexts ----------------------------------------------------------------

Status CheckKeyFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(errno, path).Wrap("TLS key");
  }
  if (st.st_mode & 0007) {
    return Error(ErrorCode::kInvalidArgument,
                 "TLS key " + path + " is readable by other users; run: chmod 600 " + path);
  }
  return Status::Ok();
}

Status NeedFile(const std::string& dir, const std::string& path) {
  if (::access(path.c_str(), R_OK) == 0) return Status::Ok();
  int err = errno;
  if (err == ENOENT) {
    return Error(ErrorCode::kInvalidArgument,
                 "TLS directory " + dir + " has no " + path.substr(dir.size() + 1) +
                     " (create one with: walferry tls init " + dir + ")");
  }
  return Error(ErrorCode::kInvalidArgument, "TLS file " + path + ": " + std::strerror(err));
}

Result<SslCtxPtr> MakeCtx(bool server, const std::string& dir, const std::string& cert,
                          const std::string& key) {
  std::string ca = dir + "/ca.crt";
  WF_TRY(NeedFile(dir, ca));
  WF_TRY(NeedFile(dir, cert));
  WF_TRY(NeedFile(dir, key));
  WF_TRY(CheckKeyFile(key));
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
  if (!ctx) return SslError(ErrorCode::kInternal, "SSL_CTX_new");
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_AUTO_RETRY);
  if (SSL_CTX_load_verify_file(c, ca.c_str()) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS CA " + ca);
  }
  if (SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS certificate " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS key " + key);
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return SslError(ErrorCode::kInvalidArgument, "TLS key " + key + " does not match " + cert);
  }
  SSL_CTX_set_verify_depth(c, 2);
  WF_TRY(internal::LoadCrls(c, dir + "/crl.pem"));
  if (server) {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, TlsConn::OnVerify);
    SSL_CTX_set_purpose(c, X509_PURPOSE_SSL_CLIENT);
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names) SSL_CTX_set_client_CA_list(c, names);
    // One ticket: sent only once the client's certificate is verified, it
    // tells the client it was accepted (see the top of this file).
    SSL_CTX_set_num_tickets(c, 1);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(c, reinterpret_cast<const unsigned char*>("walferry"), 8);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, TlsConn::OnVerify);
    SSL_CTX_set_purpose(c, X509_PURPOSE_SSL_SERVER);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, TlsConn::OnNewSession);
  }
  return ctx;
}

Result<std::string> PickClientCluster(const std::string& dir, const std::string& cluster) {
  if (!cluster.empty()) {
    if (!ValidateClusterName(cluster).ok()) {
      return Error(ErrorCode::kInvalidArgument, "invalid cluster name \"" + cluster + "\"");
    }
    std::string crt = dir + "/client-" + cluster + ".crt";
    if (::access(crt.c_str(), R_OK) != 0) {
      return Error(ErrorCode::kInvalidArgument,
                   "TLS directory " + dir + " has no client certificate for cluster " + cluster +
                       " (create one with: walferry tls init " + dir + " --cluster " + cluster +
                       ")");
    }
    return cluster;
  }
  WF_ASSIGN(std::vector<std::string> found, internal::ListClientClusters(dir));
  if (found.size() == 1) return found[0];
  if (found.empty()) {
    return Error(ErrorCode::kInvalidArgument, "TLS directory " + dir +
                                                  " has no client certificate (create one with: "
                                                  "walferry tls init " + dir + ")");
  }
  std::string list;
  for (const auto& f : found) list += (list.empty() ? "" : ", ") + f;
  return Error(ErrorCode::kInvalidArgument, "TLS directory " + dir +
                                                " has client certificates for several clusters (" +
                                                list + "); pick one with --cluster");
}

}  // namespace internal

}  // namespace walferry::transport
