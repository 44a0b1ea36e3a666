// libFuzzer target for the archive's untrusted-input parsers: the WAL long
// page header (ParseWalHeader), the header/name cross-check (CheckWalName), and
// name validation (ClassifyName, IsWalSegmentName, ValidateClusterName).
//
// Input: the bytes are parsed as the start of a WAL segment; the whole input
// (capped) is also tried as an entry and cluster name, and its last 24 bytes
// as a segment name for the cross-check. Besides "no crash", it checks two
// properties: a parsed header always accepts the name PostgreSQL would give
// its segment, and an accepted name never contains '/', NUL or "..".
// Seed corpus: fuzz/corpus/wal_header (real first pages from initdb, PG 15,
// 16 and 64 MiB segments, plus synthesized headers for every supported magic).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "archive/archive.h"
#include "core/names.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"

namespace {

using walferry::walfmt::CheckWalName;
using walferry::archive::ClassifyName;
using walferry::archive::EntryKind;
using walferry::walfmt::IsWalSegmentName;
using walferry::walfmt::ParseWalHeader;
using walferry::ValidateClusterName;
using walferry::walfmt::WalSegmentInfo;
using walferry::Status;

void Require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

std::string CanonicalName(const WalSegmentInfo& info) {
  const std::uint64_t per_log = 0x100000000ull / info.segment_size;
  const std::uint64_t segno = info.page_address / info.segment_size;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", info.timeline,
                static_cast<unsigned>(segno / per_log), static_cast<unsigned>(segno % per_log));
  return buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  std::string_view text(reinterpret_cast<const char*>(data), size < 512 ? size : 512);

  auto info = ParseWalHeader(bytes);
  if (info.ok()) {
    Require(info->segment_size >= (1u << 20) && info->segment_size <= (1u << 30),
            "segment size in range");
    // Segment numbers above 2^32 * segments-per-log cannot be named; skip those.
    const std::uint64_t segno = info->page_address / info->segment_size;
    const std::uint64_t per_log = 0x100000000ull / info->segment_size;
    if (segno / per_log <= 0xFFFFFFFFull) {
      std::string name = CanonicalName(*info);
      Require(CheckWalName(*info, name).ok(), "canonical name accepted");
      // The page walk over the rest of the input, whole and split.
      walferry::walfmt::WalPageCheck whole(*info, info->timeline);
      walferry::walfmt::WalPageCheck split(*info, info->timeline);
      Status a = whole.Feed(bytes);
      Status b = Status::Ok();
      for (std::size_t off = 0; off < size && b.ok(); off += 13) {
        b = split.Feed(bytes.subspan(off, size - off < 13 ? size - off : 13));
      }
      Require(a.ok() == b.ok(), "page walk independent of how the bytes are split");
      auto kind = ClassifyName(name);
      Require(kind.ok() && *kind == EntryKind::kWal, "canonical name is a WAL name");
    }
  }

  // Cross-check with arbitrary header fields (not only parsed ones).
  WalSegmentInfo raw;
  if (size >= 24) {
    std::memcpy(&raw.segment_size, data, 4);
    std::memcpy(&raw.timeline, data + 4, 4);
    std::memcpy(&raw.page_address, data + 8, 8);
    (void)CheckWalName(raw, std::string_view(reinterpret_cast<const char*>(data) + size - 24, 24));
  }
  if (info.ok()) (void)CheckWalName(*info, text);

  auto kind = ClassifyName(text);
  if (kind.ok()) {
    Require(text.find('/') == std::string_view::npos, "no '/' in accepted name");
    Require(text.find('\0') == std::string_view::npos, "no NUL in accepted name");
    Require(text.find("..") == std::string_view::npos, "no '..' in accepted name");
    Require(!text.empty() && text.size() <= 255 && text.front() != '.', "accepted name shape");
    Require(!IsWalSegmentName(text) || *kind == EntryKind::kWal, "segment names are WAL");
  }
  auto cluster = ValidateClusterName(text);
  if (cluster.ok()) {
    Require(text.find('/') == std::string_view::npos && text.front() != '.', "cluster name shape");
  }
  return 0;
}
