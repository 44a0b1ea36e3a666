// PostgreSQL's WAL page headers: the long header at the start of a segment
// (XLogLongPageHeaderData), its cross-check with the segment's file name, and
// the page walk with PostgreSQL's timeline rule. The rules are PostgreSQL's
// (src/include/access/xlog_internal.h, src/backend/access/transam/xlogreader.c).
// Pure functions and a single-owner checker; thread-safe apart from WalPageCheck.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/result.h"

namespace walferry::walfmt {

struct WalSegmentInfo {
  std::uint64_t system_id = 0;
  std::uint32_t segment_size = 0;  // bytes, a power of two 1 MiB..1 GiB
  std::uint32_t page_size = 0;     // XLOG_BLCKSZ
  std::uint32_t timeline = 0;
  std::uint64_t page_address = 0;  // xlp_pageaddr of the first page
  std::uint16_t magic = 0;
};
// Parses the long page header at the start of a segment. kCorrupt when the
// buffer is too short, the magic is not a known PostgreSQL WAL magic, the
// XLP_LONG_HEADER flag is missing, or sizes are not sane powers of two.
Result<WalSegmentInfo> ParseWalHeader(std::span<const std::byte> first_bytes);
// kRefused unless the header's segment number (page_address / segment_size)
// is the 24-hex segment `name`'s and the header's timeline is not greater than
// the name's (PostgreSQL's reader only requires page timelines never to go
// backwards: the first segment of a new timeline begins as a copy of the
// parent's last segment and its first page carries the parent's timeline).
Status CheckWalName(const WalSegmentInfo& info, std::string_view name);

// Walks the page headers of a segment as its bytes stream past (any split),
// from offset 0, with the timeline rule of PostgreSQL's
// XLogReaderValidatePageHeader: along the valid pages of the file (magic and
// page address as expected) the timeline never decreases, and never exceeds
// `name_timeline`. The first page (offset 0) is ParseWalHeader/CheckWalName's.
// The first page that is not this segment's next page (zeroed or recycled
// tail) ends the walk, as it ends PostgreSQL's reading. Feed returns kCorrupt
// with the page offset on a violation. Not thread-safe.
class WalPageCheck {
 public:
  static constexpr std::size_t kShortHeaderSize = 16;  // magic, info, tli, pageaddr
  WalPageCheck(const WalSegmentInfo& first, std::uint32_t name_timeline);
  Status Feed(std::span<const std::byte> data);

 private:
  Status CheckPage(std::uint64_t page_offset);
  WalSegmentInfo first_;
  std::uint32_t name_timeline_;
  std::uint32_t last_timeline_;
  std::uint64_t offset_ = 0;
  bool ended_ = false;
  std::array<std::byte, kShortHeaderSize> header_{};
};
// PostgreSQL major version (10..17) whose XLOG_PAGE_MAGIC is `magic`; 0 if unknown.
int WalMagicVersion(std::uint16_t magic);

}  // namespace walferry::walfmt
