// Name validation and classification, store formats.
#include <string>

#include "archive/archive.h"

namespace walferry::archive {

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

// Printable form of an untrusted name for an error message: control bytes and
// non-ASCII become \xNN, and the result is cut at 80 characters.
std::string Printable(std::string_view name) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (out.size() >= 80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

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

bool IsWalSegmentName(std::string_view name) {
  if (name.size() != 24) return false;
  for (char c : name) {
    if (!IsUpperHex(c)) return false;
  }
  return true;
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
  if (IsWalSegmentName(name)) return EntryKind::kWal;
  if (EndsWith(name, ".history") || EndsWith(name, ".backup") || EndsWith(name, ".partial")) {
    return EntryKind::kWal;
  }
  return EntryKind::kFile;
}

Status ValidateClusterName(std::string_view cluster) {
  auto refuse = [&](std::string_view why) {
    return Error(ErrorCode::kRefused,
                 "cluster name '" + Printable(cluster) + "' refused: " + std::string(why));
  };
  if (cluster.empty()) return refuse("empty");
  if (cluster.size() > 64) return refuse("longer than 64 bytes");
  if (cluster.front() == '.') return refuse("starts with '.'");
  for (char c : cluster) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return refuse("only letters, digits, '_', '.' and '-' are allowed");
  }
  return Status::Ok();
}

}  // namespace walferry::archive
