// The archive on an S3-compatible object store (tested on Ceph radosgw): the
// same archive::Archive contract as the disk archive, so `walferry serve
// --store-url s3://BUCKET/PREFIX` is a gateway that keeps only resume state on
// its own disk, and get/verify/cleanup/restore-base read the bucket directly.
//
// Layout (keys under PREFIX/):
//   CLUSTER/wal/NAME[.zst|.gz]      a WAL segment, .history, .backup, .partial
//   CLUSTER/files/NAME[.zst|.gz]    base backups and other files
//   CLUSTER/system_identifier       created once (PUT If-None-Match: *)
//   CLUSTER/.data/NAME.<id>         body of an object uploaded in parts (see below)
// Every final object has metadata wf-size (raw bytes) and wf-xxh3 (XXH3-128 of
// the raw stream, 32 hex), checked on every read.
//
// Exactly once: a final key is only ever written with PUT If-None-Match: *
// (radosgw answers 412 if it exists, atomically). 412 -> the stored object is
// compared (size + XXH3-128): identical -> kAlreadyIdentical, different ->
// kExistsDifferent, original untouched. radosgw ignores If-None-Match on
// CompleteMultipartUpload and on CopyObject (both overwrite: measured), so an
// object larger than one part is uploaded in parts under a unique key in
// CLUSTER/.data/ and made visible by a conditional PUT of a small marker object
// under the final name (empty body, metadata wf-data = the body's key) that
// readers follow. A losing writer deletes its body.
//
// Resume state (the gateway's local directory): per transfer
// STATE/<transfer_id>.s3state (upload id, parts with ETags, chunk/offset and
// XXH3 state at the last durable point) and STATE/<transfer_id>.spool (bytes
// since the last part, fdatasync'ed at Sync). A restarted gateway checks the
// parts with ListParts and continues. WAL-sized transfers (known size up to
// part_size) stay in memory until Commit: their first Sync reports nothing
// new as durable (the sender keeps the chunks in its resend window).
//
// Thread-safety: as archive::Archive (an Archive is shared by connections, an
// Incoming belongs to one).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "archive/archive.h"
#include "core/result.h"
#include "s3/client.h"

namespace walferry::store_s3 {

struct S3ArchiveOptions {
  s3::ClientOptions client;  // endpoint, bucket, credentials, timeouts, retries
  std::string prefix;        // key prefix, no leading/trailing '/'; may be empty
  std::string state_dir;     // local resume state; "" for a read-only archive
  archive::StoreFormat format = archive::StoreFormat::kZstd;
  std::size_t part_size = 16u << 20;  // multipart threshold and part size; >= 5 MiB
  bool create_bucket = true;          // create the bucket when missing (writers only)
};

// kInvalidArgument for a part size below 5 MiB; errors of the first request
// (the bucket check) otherwise, e.g. kAuth or kNetwork.
Result<std::unique_ptr<archive::Archive>> OpenS3Archive(S3ArchiveOptions options);

// Builds the options from an s3:// URL: endpoint from `endpoint` or
// $AWS_ENDPOINT_URL, credentials from `credentials_file` or the AWS_*
// variables (s3::LoadCredentials), TLS verification off with
// $WALFERRY_S3_INSECURE=1 (loopback tests).
Result<S3ArchiveOptions> OptionsFromUrl(const std::string& url, const std::string& endpoint,
                                        const std::string& credentials_file);

}  // namespace walferry::store_s3
