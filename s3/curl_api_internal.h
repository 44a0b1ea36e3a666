// libcurl, loaded when the first S3 client is made rather than when walferry
// starts. Linking libcurl costs every walferry process its 27 dependent
// libraries at start-up (2.4 ms per process measured with an empty program
// linked with and without it, docs/performance.md), and `push` and `get` run
// once per WAL segment while most sites never use S3. Only s3/ uses it.
//
// The function pointers have libcurl's own types (from <curl/curl.h>), so a
// call through them is checked by the compiler as a direct call would be.
// Thread-safety: LoadCurl may be called from any thread; the table it returns
// is immutable and lives until the process exits.
#pragma once

#include <curl/curl.h>

#include "core/result.h"

namespace walferry::s3 {

struct CurlApi {
  decltype(&curl_global_init) global_init;
  decltype(&curl_easy_init) easy_init;
  decltype(&curl_easy_reset) easy_reset;
  decltype(&curl_easy_setopt) easy_setopt;
  decltype(&curl_easy_perform) easy_perform;
  decltype(&curl_easy_getinfo) easy_getinfo;
  decltype(&curl_easy_strerror) easy_strerror;
  decltype(&curl_easy_cleanup) easy_cleanup;
  decltype(&curl_slist_append) slist_append;
  decltype(&curl_slist_free_all) slist_free_all;
};

// libcurl.so.4 opened once, its functions resolved and curl_global_init run.
// kUnsupported (one line naming the library) when it cannot be loaded.
Result<const CurlApi*> LoadCurl();

}  // namespace walferry::s3
