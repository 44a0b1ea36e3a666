// SigV4: canonical request -> string to sign -> HMAC chain of the secret.
#include "s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <map>

namespace walferry::s3 {
namespace {

std::string Hex(const unsigned char* p, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kHex[p[i] >> 4];
    out[2 * i + 1] = kHex[p[i] & 15];
  }
  return out;
}

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims and collapses runs of spaces, as the SigV4 canonical header rule says.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string Scope(const SignRequest& r, const Credentials& c) {
  return r.amz_date.substr(0, 8) + "/" + c.region + "/" + r.service + "/aws4_request";
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  enc.reserve(query.size());
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string CanonicalRequest(const SignRequest& r, std::string* signed_headers) {
  std::map<std::string, std::string> headers;
  for (const auto& [k, v] : r.headers) {
    std::string name = Lower(k);
    auto [it, fresh] = headers.emplace(name, CanonicalValue(v));
    if (!fresh) it->second += "," + CanonicalValue(v);
  }
  std::string canon_headers, names;
  for (const auto& [k, v] : headers) {
    canon_headers += k + ":" + v + "\n";
    if (!names.empty()) names += ';';
    names += k;
  }
  if (signed_headers) *signed_headers = names;
  return r.method + "\n" + UriEncode(r.path, true) + "\n" + CanonicalQuery(r.query) + "\n" + canon_headers +
         "\n" + names + "\n" + r.payload_hash;
}

std::string StringToSign(const SignRequest& r, const Credentials& c, const std::string& canonical_request) {
  return "AWS4-HMAC-SHA256\n" + r.amz_date + "\n" + Scope(r, c) + "\n" + Sha256Hex(canonical_request);
}

std::string Authorization(const SignRequest& r, const Credentials& c) {
  std::string signed_headers;
  std::string creq = CanonicalRequest(r, &signed_headers);
  std::string sts = StringToSign(r, c, creq);
  std::string k = Hmac("AWS4" + c.secret_key, r.amz_date.substr(0, 8));
  k = Hmac(k, c.region);
  k = Hmac(k, r.service);
  k = Hmac(k, "aws4_request");
  std::string sig = Hmac(k, sts);
  return "AWS4-HMAC-SHA256 Credential=" + c.access_key + "/" + Scope(r, c) + ", SignedHeaders=" + signed_headers +
         ", Signature=" + Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

std::string Sha256Hex(std::span<const std::byte> data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Hex(md, sizeof md);
}

std::string Sha256Hex(std::string_view data) {
  return Sha256Hex(std::as_bytes(std::span(data.data(), data.size())));
}

std::string Md5Base64(std::span<const std::byte> data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, md, static_cast<int>(len));
  return std::string(reinterpret_cast<char*>(b64), static_cast<std::size_t>(n));
}

std::string AmzDate(long long unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace walferry::s3
