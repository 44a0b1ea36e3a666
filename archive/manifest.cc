// The resume manifest <transfer_id>.state (declared in archive_internal.h for
// the fuzz target).
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/bytes.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/io.h"
#include "core/path.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"

#include "archive/disk_internal.h"

namespace walferry::archive::internal {

namespace {
constexpr char kManifestMagic[] = "walferry-incoming 1";
}  // namespace

bool IsTransferId(std::string_view id) {
  return id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return HexDigitValue(c) >= 0; });
}


std::string SerializeManifest(const Manifest& m) {
  std::string s = std::string(kManifestMagic) + "\n";
  auto add = [&](std::string_view k, const std::string& v) {
    s += k;
    s += '=';
    s += v;
    s += '\n';
  };
  add("transfer_id", m.transfer_id);
  add("cluster", m.cluster);
  add("name", m.name);
  add("store", std::to_string(static_cast<int>(m.store)));
  add("raw_size", std::to_string(m.raw_size));
  add("chunks", std::to_string(m.chunks));
  add("raw_offset", std::to_string(m.raw_offset));
  add("data_length", std::to_string(m.data_length));
  add("wal_sysid", std::to_string(m.wal_sysid));
  add("wal_seg_size", std::to_string(m.wal_seg_size));
  add("wal_timeline", std::to_string(m.wal_timeline));
  add("wal_page_address", std::to_string(m.wal_page_address));
  add("hash_state", HexEncode(m.hash_state));
  // Guards against a torn or edited manifest; any mismatch restarts the transfer.
  char sum[32];
  std::snprintf(sum, sizeof sum, "%016llx",
                static_cast<unsigned long long>(Xxh3_64(std::as_bytes(std::span(s.data(), s.size())))));
  add("check", sum);
  return s;
}

std::optional<Manifest> ParseManifest(std::string_view text) {
  auto check_pos = text.rfind("check=");
  if (check_pos == std::string_view::npos || (check_pos > 0 && text[check_pos - 1] != '\n')) {
    return std::nullopt;
  }
  std::string_view body = text.substr(0, check_pos);
  std::string_view check = text.substr(check_pos + 6);
  if (!check.empty() && check.back() == '\n') check.remove_suffix(1);
  char sum[32];
  std::snprintf(sum, sizeof sum, "%016llx",
                static_cast<unsigned long long>(Xxh3_64(std::as_bytes(std::span(body.data(), body.size())))));
  if (check != sum) return std::nullopt;
  if (body.substr(0, sizeof kManifestMagic) != std::string(kManifestMagic) + "\n") return std::nullopt;
  body.remove_prefix(sizeof kManifestMagic);
  Manifest m;
  int seen = 0;
  while (!body.empty()) {
    auto nl = body.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
    bool ok = true;
    int store = 0;
    if (k == "transfer_id") m.transfer_id = v;
    else if (k == "cluster") m.cluster = v;
    else if (k == "name") m.name = v;
    else if (k == "store") { ok = ParseNumber(v, &store) && store >= 0 && store <= 2; m.store = static_cast<StoreFormat>(store); }
    else if (k == "raw_size") ok = ParseNumber(v, &m.raw_size);
    else if (k == "chunks") ok = ParseNumber(v, &m.chunks);
    else if (k == "raw_offset") ok = ParseNumber(v, &m.raw_offset);
    else if (k == "data_length") ok = ParseNumber(v, &m.data_length);
    else if (k == "wal_sysid") ok = ParseNumber(v, &m.wal_sysid);
    else if (k == "wal_seg_size") ok = ParseNumber(v, &m.wal_seg_size);
    else if (k == "wal_timeline") ok = ParseNumber(v, &m.wal_timeline);
    else if (k == "wal_page_address") ok = ParseNumber(v, &m.wal_page_address);
    else if (k == "hash_state") ok = HexDecode(v, &m.hash_state);
    else ok = false;
    if (!ok) return std::nullopt;
    ++seen;
  }
  if (seen != 13) return std::nullopt;
  return m;
}

}  // namespace walferry::archive::internal
