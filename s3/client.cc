// S3 requests on one libcurl easy handle per Client: connection kept alive
// between requests, every request signed (SigV4), retried on transient
// failures with exponential backoff and full jitter.
#include "s3/client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <thread>

#include "s3/xml.h"

namespace walferry::s3 {

struct Client::Request {
  std::string op;      // for messages: "PUT wal/000...1"
  std::string method;  // GET PUT POST DELETE HEAD
  std::string key;     // "" = the bucket itself
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::span<const std::byte> body;
  bool body_md5 = true;
};

struct Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

namespace {

std::once_flag g_curl_once;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
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
  if (colon != std::string_view::npos) (*h)[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
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

bool Retryable(long status, const std::string& code) {
  return status == 500 || status == 502 || status == 503 || status == 504 || status == 429 ||
         code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable";
}

}  // namespace

// The one place where HTTP statuses and S3 error codes become walferry errors.
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

Client::Client(ClientOptions o) : opts_(std::move(o)) {
  std::random_device rd;
  rng_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());
}

Client::~Client() {
  if (curl_) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

Result<std::unique_ptr<Client>> Client::Make(ClientOptions o) {
  std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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
  c->curl_ = curl_easy_init();
  if (!c->curl_) return Error(ErrorCode::kInternal, "curl_easy_init failed");
  return c;
}

Result<Client::Response> Client::Once(const Request& r) {
  CURL* h = static_cast<CURL*>(curl_);
  curl_easy_reset(h);  // keeps the live connection
  std::string path = "/" + opts_.bucket + (r.key.empty() ? "" : "/" + r.key);
  std::string url = base_ + UriEncode(path, true);
  std::string q = CanonicalQuery(r.query);
  if (!q.empty()) url += "?" + q;
  SignRequest s;
  s.method = r.method;
  s.path = path;
  s.query = r.query;
  s.amz_date = AmzDate(static_cast<long long>(std::time(nullptr)));
  s.payload_hash = (opts_.sign_payload || r.body.empty()) ? Sha256Hex(r.body) : "UNSIGNED-PAYLOAD";
  s.headers = r.headers;
  s.headers.emplace_back("host", host_);
  s.headers.emplace_back("x-amz-date", s.amz_date);
  s.headers.emplace_back("x-amz-content-sha256", s.payload_hash);
  if (!opts_.credentials.session_token.empty()) {
    s.headers.emplace_back("x-amz-security-token", opts_.credentials.session_token);
  }
  if (!r.body.empty() && r.body_md5) s.headers.emplace_back("content-md5", Md5Base64(r.body));
  std::string auth = Authorization(s, opts_.credentials);

  curl_slist* list = nullptr;
  for (const auto& [k, v] : s.headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  list = curl_slist_append(list, ("authorization: " + auth).c_str());
  list = curl_slist_append(list, "Expect:");  // no 100-continue round trip
  if (r.method == "PUT" || r.method == "POST") list = curl_slist_append(list, "Content-Type:");

  Response resp;
  ReadState rs{r.body, 0, opts_.test_damage_bodies};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.request_timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteCb);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, HeaderCb);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp.headers);
  curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
  if (!opts_.verify_tls) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (r.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (r.method == "PUT" || r.method == "POST") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadCb);
    curl_easy_setopt(h, CURLOPT_READDATA, &rs);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
    if (r.method == "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
  } else if (r.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) {
    return Error(ErrorCode::kNetwork, r.op + ": " + curl_easy_strerror(rc) + " (" + base_ + ")");
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

Result<Client::Response> Client::Do(const Request& r) {
  for (int attempt = 1;; ++attempt) {
    auto resp = Once(r);
    Error err(ErrorCode::kOk, "");
    if (resp.ok()) {
      if (resp->status >= 200 && resp->status < 300) return resp;
      err = HttpError(r.op, resp->status, resp->body);
      if (!Retryable(resp->status, XmlText(resp->body, "Code"))) return err;
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

Status Client::CreateBucket() {
  Request r{"create bucket " + opts_.bucket, "PUT", "", {}, {}, {}};
  auto resp = Do(r);
  if (!resp.ok()) {
    if (resp.error().message().find("BucketAlreadyOwnedByYou") != std::string::npos) return Status::Ok();
    return resp.error();
  }
  return Status::Ok();
}

Status Client::Put(const std::string& key, std::span<const std::byte> body, const Metadata& meta,
                   bool if_none_match) {
  Request r{"PUT " + key, "PUT", key, {}, {}, body};
  for (const auto& [k, v] : meta) r.headers.emplace_back("x-amz-meta-" + k, v);
  if (if_none_match) r.headers.emplace_back("if-none-match", "*");
  auto resp = Do(r);
  if (!resp.ok()) return resp.error();
  return Status::Ok();
}

Result<ObjectInfo> Client::Head(const std::string& key) {
  Request r{"HEAD " + key, "HEAD", key, {}, {}, {}};
  WF_ASSIGN(Response resp, Do(r));
  ObjectInfo info;
  info.size = ToU64(resp.headers["content-length"]);
  info.etag = Unquote(resp.headers["etag"]);
  for (const auto& [k, v] : resp.headers) {
    if (k.rfind("x-amz-meta-", 0) == 0) info.metadata[k.substr(11)] = v;
  }
  return info;
}

Result<std::string> Client::GetRange(const std::string& key, std::uint64_t offset, std::uint64_t length,
                                     const std::string& if_match) {
  if (length == 0) return std::string();
  Request r{"GET " + key, "GET", key, {}, {}, {}};
  r.headers.emplace_back("range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
  if (!if_match.empty()) r.headers.emplace_back("if-match", if_match);
  WF_ASSIGN(Response resp, Do(r));
  if (resp.body.size() > length) {
    return Error(ErrorCode::kProtocol, "GET " + key + ": the store answered more than the range asked for");
  }
  return std::move(resp.body);
}

Status Client::Get(const std::string& key, ByteSink& sink, ObjectInfo* info_out, std::uint64_t piece) {
  WF_ASSIGN(ObjectInfo info, Head(key));
  std::uint64_t off = 0;
  while (off < info.size) {
    std::uint64_t n = std::min<std::uint64_t>(piece, info.size - off);
    WF_ASSIGN(std::string part, GetRange(key, off, n, info.etag));
    if (part.size() != n) return Error(ErrorCode::kCorrupt, "GET " + key + ": short range answer");
    WF_TRY(sink.Write(std::as_bytes(std::span(part.data(), part.size()))));
    off += n;
  }
  if (info_out) *info_out = std::move(info);
  return Status::Ok();
}

Status Client::Delete(const std::string& key) {
  Request r{"DELETE " + key, "DELETE", key, {}, {}, {}};
  auto resp = Do(r);
  if (!resp.ok() && resp.error().code() != ErrorCode::kNotFound) return resp.error();
  return Status::Ok();
}

Result<ListPage> Client::List(const std::string& prefix, const std::string& token, int max_keys,
                              const std::string& delimiter) {
  Request r{"LIST " + prefix, "GET", "", {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(max_keys)}},
            {}, {}};
  if (!token.empty()) r.query.emplace_back("continuation-token", token);
  if (!delimiter.empty()) r.query.emplace_back("delimiter", delimiter);
  WF_ASSIGN(Response resp, Do(r));
  ListPage page;
  for (std::string_view c : XmlElements(resp.body, "Contents")) {
    ListedObject o;
    o.key = XmlText(c, "Key");
    o.size = ToU64(XmlText(c, "Size"));
    if (!o.key.empty()) page.objects.push_back(std::move(o));
  }
  for (std::string_view c : XmlElements(resp.body, "CommonPrefixes")) page.common_prefixes.push_back(XmlText(c, "Prefix"));
  if (XmlText(resp.body, "IsTruncated") == "true") {
    page.next_token = XmlText(resp.body, "NextContinuationToken");
    if (page.next_token.empty()) {
      return Error(ErrorCode::kProtocol, "LIST " + prefix + ": truncated answer without a continuation token");
    }
  }
  return page;
}

Result<std::vector<ListedObject>> Client::ListAll(const std::string& prefix) {
  std::vector<ListedObject> all;
  std::string token;
  do {
    WF_ASSIGN(ListPage p, List(prefix, token));
    for (auto& o : p.objects) all.push_back(std::move(o));
    token = p.next_token;
  } while (!token.empty());
  return all;
}

Result<std::string> Client::CreateMultipart(const std::string& key, const Metadata& meta) {
  Request r{"create upload " + key, "POST", key, {{"uploads", ""}}, {}, {}};
  for (const auto& [k, v] : meta) r.headers.emplace_back("x-amz-meta-" + k, v);
  WF_ASSIGN(Response resp, Do(r));
  std::string id = XmlText(resp.body, "UploadId");
  if (id.empty()) return Error(ErrorCode::kProtocol, "create upload " + key + ": no UploadId in the answer");
  return id;
}

Result<std::string> Client::UploadPart(const std::string& key, const std::string& upload_id, int number,
                                       std::span<const std::byte> body) {
  Request r{"upload part " + std::to_string(number) + " of " + key, "PUT", key,
            {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, {}, body};
  WF_ASSIGN(Response resp, Do(r));
  std::string etag = Unquote(resp.headers["etag"]);
  if (etag.empty()) return Error(ErrorCode::kProtocol, r.op + ": no ETag in the answer");
  return etag;
}

Status Client::CompleteMultipart(const std::string& key, const std::string& upload_id,
                                 const std::vector<Part>& parts) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const auto& p : parts) {
    xml += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" + XmlEscape(p.etag) +
           "\"</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  Request r{"complete upload " + key, "POST", key, {{"uploadId", upload_id}}, {},
            std::as_bytes(std::span(xml.data(), xml.size()))};
  WF_ASSIGN(Response resp, Do(r));
  // S3 may answer 200 with an <Error> body.
  if (!XmlElements(resp.body, "Error").empty()) return HttpError(r.op, 500, resp.body);
  return Status::Ok();
}

Status Client::AbortMultipart(const std::string& key, const std::string& upload_id) {
  Request r{"abort upload " + key, "DELETE", key, {{"uploadId", upload_id}}, {}, {}};
  auto resp = Do(r);
  if (!resp.ok() && resp.error().code() != ErrorCode::kNotFound) return resp.error();
  return Status::Ok();
}

Result<std::vector<Part>> Client::ListParts(const std::string& key, const std::string& upload_id) {
  std::vector<Part> parts;
  std::string marker;
  for (int page = 0; page < 100; ++page) {
    Request r{"list parts " + key, "GET", key, {{"uploadId", upload_id}}, {}, {}};
    if (!marker.empty()) r.query.emplace_back("part-number-marker", marker);
    WF_ASSIGN(Response resp, Do(r));
    for (std::string_view e : XmlElements(resp.body, "Part")) {
      Part p;
      std::string n = XmlText(e, "PartNumber");
      std::from_chars(n.data(), n.data() + n.size(), p.number);
      p.etag = Unquote(XmlText(e, "ETag"));
      p.size = ToU64(XmlText(e, "Size"));
      if (p.number > 0) parts.push_back(std::move(p));
    }
    if (XmlText(resp.body, "IsTruncated") != "true") break;
    marker = XmlText(resp.body, "NextPartNumberMarker");
    if (marker.empty()) break;
  }
  std::sort(parts.begin(), parts.end(), [](const Part& a, const Part& b) { return a.number < b.number; });
  return parts;
}

Result<std::vector<Upload>> Client::ListUploads(const std::string& prefix) {
  std::vector<Upload> out;
  std::string key_marker, id_marker;
  for (int page = 0; page < 1000; ++page) {
    Request r{"list uploads " + prefix, "GET", "", {{"uploads", ""}, {"prefix", prefix}}, {}, {}};
    if (!key_marker.empty()) {
      r.query.emplace_back("key-marker", key_marker);
      r.query.emplace_back("upload-id-marker", id_marker);
    }
    WF_ASSIGN(Response resp, Do(r));
    for (std::string_view e : XmlElements(resp.body, "Upload")) {
      Upload u{XmlText(e, "Key"), XmlText(e, "UploadId"), XmlText(e, "Initiated")};
      if (!u.key.empty() && !u.upload_id.empty()) out.push_back(std::move(u));
    }
    if (XmlText(resp.body, "IsTruncated") != "true") break;
    key_marker = XmlText(resp.body, "NextKeyMarker");
    id_marker = XmlText(resp.body, "NextUploadIdMarker");
    if (key_marker.empty()) break;
  }
  return out;
}

Result<ClientPool::Lease> ClientPool::Acquire() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!free_.empty()) {
      auto c = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(c));
    }
  }
  WF_ASSIGN(auto c, Client::Make(opts_));
  return Lease(this, std::move(c));
}

void ClientPool::Give(std::unique_ptr<Client> c) {
  std::lock_guard<std::mutex> l(mu_);
  if (free_.size() < 64) free_.push_back(std::move(c));
}

Result<Credentials> LoadCredentials(const std::string& file) {
  Credentials c;
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return Error(ErrorCode::kInvalidArgument, "cannot read S3 credentials file " + file);
    std::string line;
    while (std::getline(in, line)) {
      auto sep = line.find_first_of("=:");
      if (sep == std::string::npos || line[0] == '#' || line[0] == '[') continue;
      std::string k = Lower(Trim(line.substr(0, sep))), v = Trim(line.substr(sep + 1));
      if (k == "aws_access_key_id" || k == "access_key_id") c.access_key = v;
      else if (k == "aws_secret_access_key" || k == "secret_access_key") c.secret_key = v;
      else if (k == "aws_session_token" || k == "session_token") c.session_token = v;
      else if (k == "region" || k == "aws_region") c.region = v;
    }
    if (c.access_key.empty() || c.secret_key.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "S3 credentials file " + file + " lacks aws_access_key_id or aws_secret_access_key");
    }
    return c;
  }
  auto env = [](const char* n) -> std::string {
    const char* v = std::getenv(n);
    return v ? v : "";
  };
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (!env("AWS_REGION").empty()) c.region = env("AWS_REGION");
  else if (!env("AWS_DEFAULT_REGION").empty()) c.region = env("AWS_DEFAULT_REGION");
  if (c.access_key.empty() || c.secret_key.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use --s3-credentials FILE");
  }
  return c;
}

bool IsS3Url(std::string_view s) { return s.substr(0, 5) == "s3://"; }

Result<Location> ParseUrl(std::string_view url) {
  if (!IsS3Url(url)) return Error(ErrorCode::kInvalidArgument, "'" + std::string(url) + "' is not s3://BUCKET/PREFIX");
  std::string_view rest = url.substr(5);
  auto slash = rest.find('/');
  Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  std::string_view prefix = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  loc.prefix = std::string(prefix);
  bool ok = loc.bucket.size() >= 3 && loc.bucket.size() <= 63;
  for (char c : loc.bucket) ok = ok && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.');
  if (!ok) return Error(ErrorCode::kInvalidArgument, "bad S3 bucket name in '" + std::string(url) + "'");
  for (std::size_t i = 0; i < loc.prefix.size(); ++i) {
    auto c = static_cast<unsigned char>(loc.prefix[i]);
    if (c < 0x20 || c == 0x7f || (c == '/' && i + 1 < loc.prefix.size() && loc.prefix[i + 1] == '/')) {
      return Error(ErrorCode::kInvalidArgument, "bad S3 prefix in '" + std::string(url) + "'");
    }
  }
  if (loc.prefix.find("..") != std::string::npos) {
    return Error(ErrorCode::kInvalidArgument, "bad S3 prefix in '" + std::string(url) + "' (no '..')");
  }
  return loc;
}

}  // namespace walferry::s3
