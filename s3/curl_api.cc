#include "s3/curl_api_internal.h"

#include <dlfcn.h>

#include <mutex>
#include <string>

namespace walferry::s3 {
namespace {

// The soname of libcurl 7.x/8.x (libcurl4 / libcurl4-openssl-dev on Debian).
constexpr const char* kCurlLibrary = "libcurl.so.4";

template <typename F>
bool Resolve(void* lib, const char* name, F* out) {
  *out = reinterpret_cast<F>(::dlsym(lib, name));
  return *out != nullptr;
}

Result<const CurlApi*> Load() {
  void* lib = ::dlopen(kCurlLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* why = ::dlerror();
    return Error(ErrorCode::kUnsupported, std::string("S3 needs libcurl: cannot load ") + kCurlLibrary + ": " +
                                              (why ? why : "unknown error") + " (install libcurl4)");
  }
  static CurlApi api;
  bool ok = Resolve(lib, "curl_global_init", &api.global_init) && Resolve(lib, "curl_easy_init", &api.easy_init) &&
            Resolve(lib, "curl_easy_reset", &api.easy_reset) && Resolve(lib, "curl_easy_setopt", &api.easy_setopt) &&
            Resolve(lib, "curl_easy_perform", &api.easy_perform) &&
            Resolve(lib, "curl_easy_getinfo", &api.easy_getinfo) &&
            Resolve(lib, "curl_easy_strerror", &api.easy_strerror) &&
            Resolve(lib, "curl_easy_cleanup", &api.easy_cleanup) &&
            Resolve(lib, "curl_slist_append", &api.slist_append) &&
            Resolve(lib, "curl_slist_free_all", &api.slist_free_all);
  if (!ok) return Error(ErrorCode::kUnsupported, std::string(kCurlLibrary) + " lacks a function walferry needs");
  if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    return Error(ErrorCode::kUnsupported, "curl_global_init failed");
  }
  return &api;  // the library stays loaded until exit
}

}  // namespace

Result<const CurlApi*> LoadCurl() {
  static std::once_flag once;
  static Result<const CurlApi*> loaded = Error(ErrorCode::kInternal, "libcurl not loaded");
  std::call_once(once, [] { loaded = Load(); });
  return loaded;
}

}  // namespace walferry::s3
