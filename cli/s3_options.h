// Opening an s3:// archive from the command line (serve --store-url, and
// --from s3://... for get, restore-base, verify, cleanup, status).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "archive/archive.h"
#include "core/result.h"

namespace walferry::cli {

struct S3Flags {
  std::string endpoint;     // --s3-endpoint; else $AWS_ENDPOINT_URL
  std::string credentials;  // --s3-credentials FILE; else $WALFERRY_S3_CREDENTIALS, else AWS_* variables
  std::size_t part_size_mib = 16;
  int timeout_seconds = 0;  // per request; 0 = the client's default
};

bool IsS3Url(const std::string& s);
// A writer (state_dir set: the gateway's resume state) or a reader (state_dir "").
Result<std::unique_ptr<archive::Archive>> OpenS3Url(const std::string& url, const S3Flags& flags,
                                                    const std::string& state_dir, archive::StoreFormat format);

}  // namespace walferry::cli
