// S3 requests on one libcurl easy handle per Client: connection kept alive
// between requests, every request signed (SigV4), retried on transient
// failures with exponential backoff and full jitter.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <random>
#include <thread>

#include "core/bytes.h"
#include "s3/client_internal.h"
#include "s3/curl_api_internal.h"
#include "s3/xml.h"

namespace walferry::s3 {
namespace internal {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::uint64_t ToU64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool Retryable(long status, const std::string& code) {
  return status == 500 || status == 502 || status == 503 || status == 504 || status == 429 ||
         code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
}

Error HttpError(const std::string& op, long status, const std::string& body) {
  std::string code = XmlText(body, "Code");
  std::string msg = XmlText(body, "Message");
  std::string what = op + ": HTTP " + std::to_string(status) + (code.empty() ? "" : " " + code) +
                     (msg.empty() ? "" : " (" + msg + ")");
  if (status == 404 || code == "NoSuchKey" || code == "NoSuchUpload" || code == "NoSuchBucket") {
    return Error(ErrorCode::kNotFound, what);
  }
  if (status == 412) return Error(ErrorCode::kExists, what);
  if (status == 403 || status == 401) return Error(ErrorCode::kAuth, what);
  if (code == "BadDigest" || code == "InvalidDigest" || code == "XAmzContentSHA256Mismatch") {
    return Error(ErrorCode::kCorrupt, what + ": the store refused a body whose checksum did not match");
  }
  if (code == "EntityTooLarge" || code == "QuotaExceeded") return Error(ErrorCode::kNoSpace, what);
  if (Retryable(status, code)) return Error(ErrorCode::kNetwork, what);
  return Error(ErrorCode::kRefused, what);
}

}  // namespace internal

namespace {

using internal::Lower;

// libcurl's functions. Client::Make loads the library (and fails when it is
// absent), so every later call finds it loaded.
const CurlApi& Curl() { return **LoadCurl(); }

size_t WriteCb(char* p, size_t size, size_t n, void* ud) {
  auto* body = static_cast<std::string*>(ud);
  if (body->size() + size * n > (64u << 20)) return 0;  // answers are bounded
  body->append(p, size * n);
  return size * n;
}

size_t HeaderCb(char* p, size_t size, size_t n, void* ud) {
  auto* h = static_cast<std::map<std::string, std::string>*>(ud);
  std::string_view line(p, size * n);
  if (line.substr(0, 5) == "HTTP/") h->clear();  // a new response (after 100 Continue)
  auto colon = line.find(':');
  if (colon != std::string_view::npos) (*h)[Lower(Trim(line.substr(0, colon)))] = std::string(Trim(line.substr(colon + 1)));
  return size * n;
}

struct ReadState {
  std::span<const std::byte> body;
  std::size_t pos = 0;
  bool damage = false;
};
size_t ReadCb(char* buf, size_t size, size_t n, void* ud) {
  auto* r = static_cast<ReadState*>(ud);
  std::size_t len = std::min(size * n, r->body.size() - r->pos);
  std::copy_n(reinterpret_cast<const char*>(r->body.data()) + r->pos, len, buf);
  if (r->damage && r->pos == 0 && len > 0) buf[0] = static_cast<char>(buf[0] ^ 1);
  r->pos += len;
  return len;
}

// The request as SigV4 signs it, with the headers that go with it.
SignRequest Signed(const Client::Request& r, const std::string& path, const ClientOptions& o, const std::string& host) {
  SignRequest s;
  s.method = r.method;
  s.path = path;
  s.query = r.query;
  s.amz_date = AmzDate(static_cast<long long>(std::time(nullptr)));
  s.payload_hash = (o.sign_payload || r.body.empty()) ? Sha256Hex(r.body) : "UNSIGNED-PAYLOAD";
  s.headers = r.headers;
  s.headers.emplace_back("host", host);
  s.headers.emplace_back("x-amz-date", s.amz_date);
  s.headers.emplace_back("x-amz-content-sha256", s.payload_hash);
  if (!o.credentials.session_token.empty()) {
    s.headers.emplace_back("x-amz-security-token", o.credentials.session_token);
  }
  if (!r.body.empty() && r.body_md5) s.headers.emplace_back("content-md5", Md5Base64(r.body));
  return s;
}

// The header list of `s`, its authorization, and what curl must not add.
curl_slist* HeaderList(const SignRequest& s, const ClientOptions& o) {
  std::string auth = Authorization(s, o.credentials);
  curl_slist* list = nullptr;
  for (const auto& [k, v] : s.headers) list = Curl().slist_append(list, (k + ": " + v).c_str());
  list = Curl().slist_append(list, ("authorization: " + auth).c_str());
  list = Curl().slist_append(list, "Expect:");  // no 100-continue round trip
  if (s.method == "PUT" || s.method == "POST") list = Curl().slist_append(list, "Content-Type:");
  return list;
}

// The method and its body on the handle.
void SetMethod(CURL* h, const Client::Request& r, ReadState* rs) {
  if (r.method == "HEAD") {
    Curl().easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (r.method == "PUT" || r.method == "POST") {
    Curl().easy_setopt(h, CURLOPT_UPLOAD, 1L);
    Curl().easy_setopt(h, CURLOPT_READFUNCTION, ReadCb);
    Curl().easy_setopt(h, CURLOPT_READDATA, rs);
    Curl().easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    if (r.method == "POST") Curl().easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (r.method != "GET") {
    Curl().easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
}

}  // namespace

Client::Client(ClientOptions o) : opts_(std::move(o)) {
  std::random_device rd;
  rng_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());
}

Client::~Client() {
  if (curl_) Curl().easy_cleanup(static_cast<CURL*>(curl_));
}

Result<std::unique_ptr<Client>> Client::Make(ClientOptions o) {
  if (auto curl = LoadCurl(); !curl.ok()) return curl.error();
  std::string ep = o.endpoint;
  while (!ep.empty() && ep.back() == '/') ep.pop_back();
  std::size_t scheme_end = ep.find("://");
  if (scheme_end == std::string::npos || (ep.substr(0, scheme_end) != "http" && ep.substr(0, scheme_end) != "https") ||
      scheme_end + 3 >= ep.size() || ep.find('/', scheme_end + 3) != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument,
                 "S3 endpoint '" + o.endpoint + "' is not http(s)://HOST[:PORT] (give it with --s3-endpoint)");
  }
  if (o.bucket.empty()) return Error(ErrorCode::kInvalidArgument, "S3 bucket name is empty");
  std::unique_ptr<Client> c(new Client(std::move(o)));
  c->base_ = ep;
  c->host_ = ep.substr(scheme_end + 3);
  c->curl_ = Curl().easy_init();
  if (!c->curl_) return Error(ErrorCode::kInternal, "curl_easy_init failed");
  return c;
}

Result<Client::Response> Client::Once(const Request& r) {
  CURL* h = static_cast<CURL*>(curl_);
  Curl().easy_reset(h);  // keeps the live connection
  std::string path = "/" + opts_.bucket + (r.key.empty() ? "" : "/" + r.key);
  std::string url = base_ + UriEncode(path, true);
  std::string q = CanonicalQuery(r.query);
  if (!q.empty()) url += "?" + q;
  curl_slist* list = HeaderList(Signed(r, path, opts_, host_), opts_);

  Response resp;
  ReadState rs{r.body, 0, opts_.test_damage_bodies};
  Curl().easy_setopt(h, CURLOPT_URL, url.c_str());
  Curl().easy_setopt(h, CURLOPT_HTTPHEADER, list);
  Curl().easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  Curl().easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout.count()));
  Curl().easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.request_timeout.count()));
  Curl().easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteCb);
  Curl().easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
  Curl().easy_setopt(h, CURLOPT_HEADERFUNCTION, HeaderCb);
  Curl().easy_setopt(h, CURLOPT_HEADERDATA, &resp.headers);
  Curl().easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  if (!opts_.verify_tls) {
    Curl().easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    Curl().easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  SetMethod(h, r, &rs);
  CURLcode rc = Curl().easy_perform(h);
  Curl().slist_free_all(list);
  if (rc != CURLE_OK) {
    return Error(ErrorCode::kNetwork, r.op + ": " + Curl().easy_strerror(rc) + " (" + base_ + ")");
  }
  Curl().easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Result<Client::Response> Client::Do(const Request& r) {
  for (int attempt = 1;; ++attempt) {
    auto resp = Once(r);
    Error err(ErrorCode::kOk, "");
    if (resp.ok()) {
      if (resp->status >= 200 && resp->status < 300) return resp;
      err = internal::HttpError(r.op, resp->status, resp->body);
      if (!internal::Retryable(resp->status, XmlText(resp->body, "Code"))) return err;
    } else {
      err = resp.error();
    }
    if (attempt >= std::max(1, opts_.max_attempts)) {
      return err.Wrap("after " + std::to_string(attempt) + " attempts");
    }
    // Full jitter: uniform in [0, min(max, initial * 2^(attempt-1))].
    auto cap = std::min<long long>(opts_.backoff_max.count(),
                                   opts_.backoff_initial.count() << std::min(attempt - 1, 20));
    rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
    auto wait = static_cast<long long>((rng_ >> 33) % static_cast<std::uint64_t>(cap + 1));
    if (opts_.note) opts_.note(err.message() + "; retrying in " + std::to_string(wait) + " ms");
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
  }
}

}  // namespace walferry::s3
