#include "core/names.h"

#include "core/bytes.h"

namespace walferry {

std::string Printable(std::string_view name) {
  std::string out;
  for (char ch : name) {
    auto c = static_cast<unsigned char>(ch);
    if (out.size() >= 80) {
      out += "...";
      break;
    }
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out += kHexLower[c >> 4];
      out += kHexLower[c & 15];
    } else {
      out += ch;
    }
  }
  return out;
}

Status ValidateClusterName(std::string_view cluster) {
  auto refuse = [&](std::string_view why) {
    return Error(ErrorCode::kRefused,
                 "cluster name '" + Printable(cluster) + "' refused: " + std::string(why));
  };
  if (cluster.empty()) return refuse("empty");
  if (cluster.size() > 64) return refuse("longer than 64 bytes");
  if (cluster.front() == '.') return refuse("starts with '.'");
  if (cluster.front() == '-') return refuse("starts with '-'");
  for (char c : cluster) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return refuse("only letters, digits, '_', '.' and '-' are allowed");
  }
  return Status::Ok();
}

}  // namespace walferry
