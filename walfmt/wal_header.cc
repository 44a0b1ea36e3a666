// PostgreSQL WAL long page header parsing and the name cross-check.
//
// XLogLongPageHeaderData (src/include/access/xlog_internal.h), little-endian:
//   @0  u16 xlp_magic      @2  u16 xlp_info      @4  u32 xlp_tli
//   @8  u64 xlp_pageaddr   @16 u32 xlp_rem_len   (@20 padding)
//   @24 u64 xlp_sysid      @32 u32 xlp_seg_size  @36 u32 xlp_xlog_blcksz
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "walfmt/wal_header.h"

#include "core/bytes.h"
#include "walfmt/wal_names.h"

namespace walferry::walfmt {

namespace {

constexpr std::size_t kLongHeaderSize = 40;
constexpr std::uint16_t kXlpLongHeader = 0x0002;
// XLP_ALL_FLAGS (xlog_internal.h): XLP_FIRST_IS_CONTRECORD, XLP_LONG_HEADER,
// XLP_BKP_REMOVABLE and XLP_FIRST_IS_OVERWRITE_CONTRECORD (0x0008, PostgreSQL
// 15, back-patched to 10..14 in their 2021 minor releases).
constexpr std::uint16_t kXlpAllFlags = 0x000F;

// XLOG_PAGE_MAGIC of the released PostgreSQL major versions we accept.
struct MagicVersion {
  std::uint16_t magic;
  int version;
};
constexpr MagicVersion kMagics[] = {
    {0xD097, 10}, {0xD098, 11}, {0xD101, 12}, {0xD106, 13},
    {0xD10D, 14}, {0xD110, 15}, {0xD113, 16}, {0xD116, 17},
};

bool IsPowerOfTwo(std::uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

std::string Hex(std::uint64_t v, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llX", width, static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

int WalMagicVersion(std::uint16_t magic) {
  for (const auto& m : kMagics) {
    if (m.magic == magic) return m.version;
  }
  return 0;
}

Result<WalSegmentInfo> ParseWalHeader(std::span<const std::byte> first_bytes) {
  if (first_bytes.size() < kLongHeaderSize) {
    return Error(ErrorCode::kCorrupt, "not a WAL segment: shorter than a WAL page header (" +
                                          std::to_string(first_bytes.size()) + " bytes)");
  }
  const std::byte* p = first_bytes.data();
  WalSegmentInfo info;
  info.magic = LoadLe<std::uint16_t>(p + 0);
  auto xlp_info = LoadLe<std::uint16_t>(p + 2);
  info.timeline = LoadLe<std::uint32_t>(p + 4);
  info.page_address = LoadLe<std::uint64_t>(p + 8);
  info.system_id = LoadLe<std::uint64_t>(p + 24);
  info.segment_size = LoadLe<std::uint32_t>(p + 32);
  info.page_size = LoadLe<std::uint32_t>(p + 36);

  if (WalMagicVersion(info.magic) == 0) {
    return Error(ErrorCode::kCorrupt, "not a WAL segment of PostgreSQL 10..17: page magic 0x" +
                                          Hex(info.magic, 4) + " unknown");
  }
  if ((xlp_info & kXlpLongHeader) == 0 || (xlp_info & ~kXlpAllFlags) != 0) {
    return Error(ErrorCode::kCorrupt, "not the first page of a WAL segment: page flags 0x" +
                                          Hex(xlp_info, 4) + " lack a valid long header");
  }
  if (!IsValidSegmentSize(info.segment_size)) {
    return Error(ErrorCode::kCorrupt, "WAL header: segment size " +
                                          std::to_string(info.segment_size) +
                                          " is not a power of two between 1 MiB and 1 GiB");
  }
  if (!IsPowerOfTwo(info.page_size) || info.page_size < 1024 || info.page_size > 65536) {
    return Error(ErrorCode::kCorrupt, "WAL header: page size " + std::to_string(info.page_size) +
                                          " is not a power of two between 1 KiB and 64 KiB");
  }
  if (info.timeline == 0) return Error(ErrorCode::kCorrupt, "WAL header: timeline 0");
  if (info.page_address % info.segment_size != 0) {
    return Error(ErrorCode::kCorrupt, "WAL header: page address " + Hex(info.page_address, 16) +
                                          " is not at the start of a segment");
  }
  return info;
}

Status CheckWalName(const WalSegmentInfo& info, std::string_view name) {
  if (!IsWalSegmentName(name)) {
    return Error(ErrorCode::kRefused, "'" + std::string(name.substr(0, 64)) +
                                          "' is not a 24-hex-digit WAL segment name");
  }
  auto per_log_or = SegmentsPerLogId(info.segment_size);
  if (!per_log_or.ok()) {
    return Error(ErrorCode::kRefused, std::string(name) + ": bad WAL segment size " +
                                          std::to_string(info.segment_size));
  }
  const SegmentName parsed = *ParseSegmentName(name);
  const std::uint32_t tli = parsed.timeline, log = parsed.log, seg = parsed.seg;
  const std::uint64_t per_log = *per_log_or;
  if (seg >= per_log) {
    return Error(ErrorCode::kRefused,
                 std::string(name) + ": not a valid segment name for " +
                     std::to_string(info.segment_size >> 20) + " MiB segments");
  }
  const std::uint64_t name_segno = static_cast<std::uint64_t>(log) * per_log + seg;
  const std::uint64_t header_segno = info.page_address / info.segment_size;
  // PostgreSQL's rule (XLogReaderValidatePageHeader): page timelines never go
  // backwards. The first segment of a new timeline starts as a copy of the old
  // timeline's last segment, so its first page carries the parent's (lower)
  // timeline; a page timeline above the name's can never be written.
  if (info.timeline > tli || name_segno != header_segno) {
    std::string expected = Hex(info.timeline, 8) + Hex(header_segno / per_log, 8) +
                           Hex(header_segno % per_log, 8);
    return Error(ErrorCode::kRefused,
                 std::string(name) + ": WAL header says timeline " +
                     std::to_string(info.timeline) + " segment " + std::to_string(header_segno) +
                     " (file name would be " + expected + ")");
  }
  return Status::Ok();
}

WalPageCheck::WalPageCheck(const WalSegmentInfo& first, std::uint32_t name_timeline)
    : first_(first), name_timeline_(name_timeline), last_timeline_(first.timeline) {}

Status WalPageCheck::Feed(std::span<const std::byte> data) {
  const std::uint64_t page = first_.page_size;
  while (!data.empty() && !ended_) {
    const std::uint64_t in_page = offset_ % page;
    if (in_page < kShortHeaderSize) {
      const std::size_t take =
          std::min<std::size_t>(kShortHeaderSize - static_cast<std::size_t>(in_page), data.size());
      std::memcpy(header_.data() + in_page, data.data(), take);
      offset_ += take;
      data = data.subspan(take);
      if (offset_ % page == kShortHeaderSize) WF_TRY(CheckPage(offset_ - kShortHeaderSize));
      continue;
    }
    const std::uint64_t skip = std::min<std::uint64_t>(page - in_page, data.size());
    offset_ += skip;
    data = data.subspan(static_cast<std::size_t>(skip));
  }
  return Status::Ok();
}

Status WalPageCheck::CheckPage(std::uint64_t page_offset) {
  const std::byte* p = header_.data();
  const auto magic = LoadLe<std::uint16_t>(p + 0);
  const auto xlp_info = LoadLe<std::uint16_t>(p + 2);
  const auto tli = LoadLe<std::uint32_t>(p + 4);
  const auto addr = LoadLe<std::uint64_t>(p + 8);
  if (page_offset == 0) return Status::Ok();  // the long header, checked by ParseWalHeader
  // A page that is not the next page of this segment ends the valid WAL in
  // the file (zeroed, or left over from a recycled segment); PostgreSQL's
  // reader stops there too, so nothing after it is judged.
  if (magic != first_.magic || addr != first_.page_address + page_offset ||
      (xlp_info & ~kXlpAllFlags) != 0) {
    ended_ = true;
    return Status::Ok();
  }
  if (tli < last_timeline_ || tli > name_timeline_) {
    return Error(ErrorCode::kCorrupt,
                 "WAL page at offset " + std::to_string(page_offset) + " has timeline " +
                     std::to_string(tli) +
                     (tli < last_timeline_ ? " after " + std::to_string(last_timeline_)
                                           : " above the file name's " +
                                                 std::to_string(name_timeline_)));
  }
  last_timeline_ = tli;
  return Status::Ok();
}

}  // namespace walferry::walfmt
