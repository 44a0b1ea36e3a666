// PostgreSQL's WAL file names (src/include/access/xlog_internal.h): segment
// names and sizes, timeline history file names; ordering, the next segments,
// archive cleanup selection (pg_archivecleanup's rule) and holes in a segment
// sequence. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace walferry::walfmt {

// A 24-hex segment name TTTTTTTTLLLLLLLLSSSSSSSS (timeline, log id, segment in log).
struct SegmentName {
  std::uint32_t timeline = 0;
  std::uint32_t log = 0;
  std::uint32_t seg = 0;
};
// nullopt unless `name` is exactly 24 uppercase hex digits.
std::optional<SegmentName> ParseSegmentName(std::string_view name);
bool IsWalSegmentName(std::string_view name);  // ParseSegmentName(name).has_value()
// The timeline of a 24-hex segment name (0 when `name` is not one).
std::uint32_t SegmentNameTimeline(std::string_view name);
// A timeline history file name: 8 uppercase hex digits + ".history" (TLHistoryFileName).
bool IsHistoryFileName(std::string_view name);
// The segment a "<24-hex segment name>.partial" file is (IsPartialXLogFileName:
// the last, incomplete segment of a timeline that a promotion renamed); ""
// for any other name. The file is that segment's bytes, page headers included.
std::string_view PartialSegmentName(std::string_view name);

// The one segment-size rule (wal_segment_size, XLogSegmentSize): a power of
// two between 1 MiB and 1 GiB.
bool IsValidSegmentSize(std::uint64_t segment_size);
std::string FormatSegmentName(const SegmentName& s);

// Segments per log id for a segment size (0x100000000 / size); kInvalidArgument
// unless IsValidSegmentSize.
Result<std::uint64_t> SegmentsPerLogId(std::uint32_t segment_size);
// Linear segment number within a timeline: log * per_id + seg.
std::uint64_t SegmentNumber(const SegmentName& s, std::uint64_t per_id);
SegmentName FromSegmentNumber(std::uint32_t timeline, std::uint64_t number, std::uint64_t per_id);

// The `count` segment names after `name` on the same timeline.
std::vector<std::string> NextSegmentNames(const SegmentName& name, std::uint64_t per_id,
                                          int count);

// archive_cleanup_command: of `names` (archive names, no store suffix), those
// strictly older than `restart_point` (%r; a segment name, or a .partial/.backup
// name whose first 24 characters are one). Like pg_archivecleanup, the order is
// the log/segment part of the name (characters 9..24), ignoring the timeline;
// segments, .partial and .backup files qualify; .history files and anything
// else never do. kInvalidArgument when restart_point is not a WAL file name.
Result<std::vector<std::string>> SelectForCleanup(const std::vector<std::string>& names,
                                                  std::string_view restart_point);

struct Gap {
  std::uint32_t timeline = 0;
  std::string first_missing;  // segment names, inclusive
  std::string last_missing;
  std::uint64_t count = 0;
};
// Holes in each timeline's sequence of segments (between its first and last
// stored segment). Non-segment names are ignored. Sorted by timeline, position.
std::vector<Gap> FindGaps(const std::vector<std::string>& names, std::uint64_t per_id);

// Newest segment name per timeline, highest timeline last ("" when none).
std::string NewestSegment(const std::vector<std::string>& names);

}  // namespace walferry::walfmt
