#include "cli/s3_options.h"

#include <cstdio>
#include <cstdlib>

#include "s3/client.h"
#include "store_s3/s3_archive.h"

namespace walferry::cli {

bool IsS3Url(const std::string& s) { return s3::IsS3Url(s); }

Result<std::unique_ptr<archive::Archive>> OpenS3Url(const std::string& url, const S3Flags& flags,
                                                    const std::string& state_dir, archive::StoreFormat format) {
  std::string creds = flags.credentials;
  if (creds.empty()) {
    const char* f = std::getenv("WALFERRY_S3_CREDENTIALS");
    creds = f ? f : "";
  }
  std::string endpoint = flags.endpoint;
  if (endpoint.empty()) {
    const char* e = std::getenv("WALFERRY_S3_ENDPOINT");
    endpoint = e ? e : "";
  }
  WF_ASSIGN(store_s3::S3ArchiveOptions o, store_s3::OptionsFromUrl(url, endpoint, creds));
  o.state_dir = state_dir;
  o.format = format;
  o.part_size = flags.part_size_mib << 20;
  if (flags.timeout_seconds > 0) o.client.request_timeout = std::chrono::seconds(flags.timeout_seconds);
  if (const char* a = std::getenv("WALFERRY_S3_ATTEMPTS"); a && *a) o.client.max_attempts = std::atoi(a);
  o.client.note = [](const std::string& line) { std::fprintf(stderr, "walferry: s3: %s\n", line.c_str()); };
  return store_s3::OpenS3Archive(std::move(o));
}

}  // namespace walferry::cli
