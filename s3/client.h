// A small S3 client for the operations walferry's object-store archive needs,
// on libcurl (HTTP/1.1, keep-alive, TLS through OpenSSL) with SigV4 signing
// from s3/sigv4.h. Path-style addressing (http://HOST:PORT/BUCKET/KEY), as
// radosgw, MinIO and AWS all accept.
//
// Every body sent carries Content-MD5, so the store refuses a body damaged on
// the way (400 BadDigest -> kCorrupt). Payloads are UNSIGNED-PAYLOAD unless
// sign_payload is set (then the SHA-256 is computed and signed as well).
//
// Errors: one function (HttpError in http.cc) turns HTTP statuses, S3 error
// codes and curl errors into walferry errors: 404/NoSuchKey/NoSuchUpload ->
// kNotFound, 412 -> kExists, 403 -> kAuth, 400 BadDigest -> kCorrupt, other
// 4xx -> kRefused, 5xx/throttling/transport failures -> kNetwork after the
// retries. Retries: transport failures, 500/502/503/504, 429 and SlowDown are
// retried up to max_attempts with exponential backoff and full jitter.
//
// Thread-safety: a Client is used by one thread at a time (one curl handle,
// whose connection is reused across requests). ClientPool hands clients out
// to threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/stream.h"
#include "s3/sigv4.h"

namespace walferry::s3 {

struct ClientOptions {
  std::string endpoint;  // "http://127.0.0.1:7480" or "https://s3.example.com"
  std::string bucket;
  Credentials credentials;
  bool verify_tls = true;
  bool sign_payload = false;  // sign the SHA-256 of each body (costs a second hash)
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{120000};  // whole request, one attempt
  int max_attempts = 6;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{4000};
  std::function<void(const std::string&)> note;  // one line per retry; may be empty
  // Fault injection for tests: flips one bit of every body after its
  // Content-MD5 was computed (a body damaged on the way).
  bool test_damage_bodies = false;
};

using Metadata = std::map<std::string, std::string>;  // x-amz-meta-<name> (lower-case names)

struct ObjectInfo {
  std::uint64_t size = 0;
  std::string etag;  // without quotes
  Metadata metadata;
};
struct ListedObject {
  std::string key;
  std::uint64_t size = 0;
};
struct ListPage {
  std::vector<ListedObject> objects;
  std::vector<std::string> common_prefixes;
  std::string next_token;  // "" on the last page
};
struct Part {
  int number = 0;
  std::string etag;  // without quotes
  std::uint64_t size = 0;
};
struct Upload {
  std::string key, upload_id, initiated;  // initiated: ISO 8601 as S3 gives it
};

class Client {
 public:
  // kInvalidArgument for an endpoint that is not http(s)://HOST[:PORT] or an empty bucket.
  static Result<std::unique_ptr<Client>> Make(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientOptions& options() const { return opts_; }

  // Creates the bucket; ok when it already exists and is ours.
  Status CreateBucket();
  // PUT of a whole object. With `if_none_match`, kExists when the key exists
  // (412: nothing was written).
  Status Put(const std::string& key, std::span<const std::byte> body, const Metadata& meta, bool if_none_match);
  Result<ObjectInfo> Head(const std::string& key);
  // Bytes [offset, offset + length) (fewer at the end of the object). When
  // `if_match` is set, kExists (412) if the object's ETag changed.
  Result<std::string> GetRange(const std::string& key, std::uint64_t offset, std::uint64_t length,
                               const std::string& if_match = "");
  // Whole object to `sink` in ranged GETs of `piece` bytes (each retried), all
  // pinned to one ETag. Does not call sink.Finish().
  Status Get(const std::string& key, ByteSink& sink, ObjectInfo* info = nullptr,
             std::uint64_t piece = 8u << 20);
  Status Delete(const std::string& key);  // ok when absent
  // One ListObjectsV2 page. `delimiter` "" lists recursively.
  Result<ListPage> List(const std::string& prefix, const std::string& token, int max_keys = 1000,
                        const std::string& delimiter = "");
  // All pages.
  Result<std::vector<ListedObject>> ListAll(const std::string& prefix);

  Result<std::string> CreateMultipart(const std::string& key, const Metadata& meta);  // upload id
  Result<std::string> UploadPart(const std::string& key, const std::string& upload_id, int number,
                                 std::span<const std::byte> body);  // ETag
  Status CompleteMultipart(const std::string& key, const std::string& upload_id, const std::vector<Part>& parts);
  Status AbortMultipart(const std::string& key, const std::string& upload_id);  // ok when gone
  Result<std::vector<Part>> ListParts(const std::string& key, const std::string& upload_id);
  Result<std::vector<Upload>> ListUploads(const std::string& prefix);

  struct Request;
  struct Response;

 private:
  explicit Client(ClientOptions o);
  Result<Response> Do(const Request& r);
  Result<Response> Once(const Request& r);

  ClientOptions opts_;
  std::string base_;  // scheme://host[:port]
  std::string host_;  // host[:port] as signed
  void* curl_ = nullptr;
  std::uint64_t rng_;
};

// A set of clients with the same options for a multi-threaded server.
// Acquire blocks never: it makes a new client when none is free.
class ClientPool {
 public:
  explicit ClientPool(ClientOptions o) : opts_(std::move(o)) {}
  class Lease {
   public:
    Lease(ClientPool* p, std::unique_ptr<Client> c) : pool_(p), c_(std::move(c)) {}
    Lease(Lease&&) = default;
    ~Lease() {
      if (c_) pool_->Give(std::move(c_));
    }
    Client* operator->() { return c_.get(); }
    Client& operator*() { return *c_; }

   private:
    ClientPool* pool_;
    std::unique_ptr<Client> c_;
  };
  Result<Lease> Acquire();
  const ClientOptions& options() const { return opts_; }

 private:
  void Give(std::unique_ptr<Client> c);
  ClientOptions opts_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Client>> free_;
};

// Reads credentials: from `file` when non-empty (lines "key = value" or
// "key: value" with access_key_id / secret_access_key / region, as in an AWS
// credentials file: aws_access_key_id, aws_secret_access_key, region), else from
// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN / AWS_REGION
// (region defaults to us-east-1). kInvalidArgument when a key is missing.
Result<Credentials> LoadCredentials(const std::string& file);

// "s3://BUCKET/PREFIX" -> bucket and prefix (no leading/trailing '/').
struct Location {
  std::string bucket, prefix;
};
Result<Location> ParseUrl(std::string_view url);
bool IsS3Url(std::string_view s);

}  // namespace walferry::s3
