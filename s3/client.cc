// The S3 operations of s3/client.h, each one request through Client::Do
// (http.cc), and the client pool.
#include "s3/client.h"

#include <charconv>

#include "s3/client_internal.h"
#include "s3/xml.h"

namespace walferry::s3 {

using internal::HttpError;
using internal::ToU64;
using internal::Unquote;

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

}  // namespace walferry::s3
