// Name validation and classification, store formats.
#include <string>

#include "store/store.h"
#include "core/names.h"
#include "walfmt/wal_names.h"

namespace walferry::store {

namespace {

Error Refuse(std::string_view name, std::string_view why) {
  return Error(ErrorCode::kRefused, "name '" + Printable(name) + "' refused: " + std::string(why));
}

}  // namespace

Result<StoreFormat> ParseStoreFormat(std::string_view s) {
  if (s == "zstd") return StoreFormat::kZstd;
  if (s == "gzip") return StoreFormat::kGzip;
  if (s == "raw") return StoreFormat::kRaw;
  return Error(ErrorCode::kInvalidArgument,
               "unknown store format '" + Printable(s) + "' (expected zstd, gzip or raw)");
}

std::string_view StoreSuffix(StoreFormat f) {
  switch (f) {
    case StoreFormat::kZstd: return ".zst";
    case StoreFormat::kGzip: return ".gz";
    case StoreFormat::kRaw: return "";
  }
  return "";
}

compress::Algorithm StoreAlgorithm(StoreFormat f) {
  switch (f) {
    case StoreFormat::kZstd: return compress::Algorithm::kZstd;
    case StoreFormat::kGzip: return compress::Algorithm::kGzip;
    case StoreFormat::kRaw: return compress::Algorithm::kRaw;
  }
  return compress::Algorithm::kRaw;
}

Result<EntryKind> ClassifyName(std::string_view name) {
  if (name.empty()) return Refuse(name, "empty");
  if (name.size() > 255) return Refuse(name, "longer than 255 bytes");
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (c == 0) return Refuse(name, "contains a NUL byte");
    if (c < 0x20 || c == 0x7f) return Refuse(name, "contains a control character");
    if (c == '/') return Refuse(name, "contains '/'");
  }
  if (name == "." || name == "..") return Refuse(name, "not a file name");
  if (name.front() == '.') return Refuse(name, "starts with '.'");
  if (name.find("..") != std::string_view::npos) return Refuse(name, "contains '..'");
  if (walfmt::IsWalSegmentName(name)) return EntryKind::kWal;
  if (name.ends_with(".history") || name.ends_with(".backup") || name.ends_with(".partial")) {
    return EntryKind::kWal;
  }
  return EntryKind::kFile;
}

}  // namespace walferry::store
