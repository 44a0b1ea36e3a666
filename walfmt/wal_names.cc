#include "walfmt/wal_names.h"

#include <algorithm>
#include <cstdio>
#include <map>

namespace walferry::walfmt {
namespace {

bool IsUpperHex(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); }

std::uint32_t Hex32(std::string_view s) {
  std::uint32_t v = 0;
  for (char c : s) v = v * 16 + static_cast<std::uint32_t>(c <= '9' ? c - '0' : c - 'A' + 10);
  return v;
}

bool HasSegmentPrefix(std::string_view name) {
  return name.size() >= 24 && ParseSegmentName(name.substr(0, 24)).has_value();
}

}  // namespace

std::optional<SegmentName> ParseSegmentName(std::string_view name) {
  if (name.size() != 24 || !std::all_of(name.begin(), name.end(), IsUpperHex)) return std::nullopt;
  return SegmentName{Hex32(name.substr(0, 8)), Hex32(name.substr(8, 8)), Hex32(name.substr(16, 8))};
}

bool IsWalSegmentName(std::string_view name) { return ParseSegmentName(name).has_value(); }

std::uint32_t SegmentNameTimeline(std::string_view name) {
  auto s = ParseSegmentName(name);
  return s ? s->timeline : 0;
}

bool IsHistoryFileName(std::string_view name) {
  return name.size() == 16 && name.ends_with(".history") &&
         std::all_of(name.begin(), name.begin() + 8, IsUpperHex);
}

std::string_view PartialSegmentName(std::string_view name) {
  constexpr std::string_view kSuffix = ".partial";
  if (name.size() != 24 + kSuffix.size() || !name.ends_with(kSuffix)) return {};
  std::string_view seg = name.substr(0, 24);
  return IsWalSegmentName(seg) ? seg : std::string_view();
}

bool IsValidSegmentSize(std::uint64_t segment_size) {
  return segment_size >= (1u << 20) && segment_size <= (1u << 30) &&
         (segment_size & (segment_size - 1)) == 0;
}

std::string FormatSegmentName(const SegmentName& s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08X%08X%08X", s.timeline, s.log, s.seg);
  return buf;
}

Result<std::uint64_t> SegmentsPerLogId(std::uint32_t segment_size) {
  if (!IsValidSegmentSize(segment_size)) {
    return Error(ErrorCode::kInvalidArgument,
                 "bad WAL segment size " + std::to_string(segment_size));
  }
  return (std::uint64_t{1} << 32) / segment_size;
}

std::uint64_t SegmentNumber(const SegmentName& s, std::uint64_t per_id) {
  return std::uint64_t{s.log} * per_id + s.seg;
}

SegmentName FromSegmentNumber(std::uint32_t timeline, std::uint64_t number, std::uint64_t per_id) {
  return SegmentName{timeline, static_cast<std::uint32_t>(number / per_id),
                     static_cast<std::uint32_t>(number % per_id)};
}

std::vector<std::string> NextSegmentNames(const SegmentName& name, std::uint64_t per_id,
                                          int count) {
  std::vector<std::string> out;
  std::uint64_t n = SegmentNumber(name, per_id);
  for (int i = 1; i <= count; ++i) {
    out.push_back(FormatSegmentName(FromSegmentNumber(name.timeline, n + i, per_id)));
  }
  return out;
}

Result<std::vector<std::string>> SelectForCleanup(const std::vector<std::string>& names,
                                                  std::string_view restart_point) {
  if (!HasSegmentPrefix(restart_point) ||
      !(restart_point.size() == 24 || restart_point.ends_with(".partial") ||
        restart_point.ends_with(".backup"))) {
    return Error(ErrorCode::kInvalidArgument,
                 "not a WAL file name: '" + std::string(restart_point) + "' (expected %r)");
  }
  std::string_view cutoff = restart_point.substr(8, 16);
  std::vector<std::string> out;
  for (const std::string& n : names) {
    if (!HasSegmentPrefix(n)) continue;
    bool kind_ok = n.size() == 24 || std::string_view(n).ends_with(".partial") || std::string_view(n).ends_with(".backup");
    if (!kind_ok) continue;  // .history has no segment prefix anyway; anything else stays
    if (std::string_view(n).substr(8, 16) < cutoff) out.push_back(n);
  }
  return out;
}

std::vector<Gap> FindGaps(const std::vector<std::string>& names, std::uint64_t per_id) {
  std::map<std::uint32_t, std::vector<std::uint64_t>> by_tli;
  for (const std::string& n : names) {
    auto s = ParseSegmentName(n);
    if (s && s->seg < per_id) by_tli[s->timeline].push_back(SegmentNumber(*s, per_id));
  }
  std::vector<Gap> gaps;
  for (auto& [tli, nums] : by_tli) {
    std::sort(nums.begin(), nums.end());
    nums.erase(std::unique(nums.begin(), nums.end()), nums.end());
    for (std::size_t i = 1; i < nums.size(); ++i) {
      if (nums[i] != nums[i - 1] + 1) {
        Gap g;
        g.timeline = tli;
        g.first_missing = FormatSegmentName(FromSegmentNumber(tli, nums[i - 1] + 1, per_id));
        g.last_missing = FormatSegmentName(FromSegmentNumber(tli, nums[i] - 1, per_id));
        g.count = nums[i] - nums[i - 1] - 1;
        gaps.push_back(std::move(g));
      }
    }
  }
  return gaps;
}

std::string NewestSegment(const std::vector<std::string>& names) {
  std::string best;
  for (const std::string& n : names) {
    if (ParseSegmentName(n) && n > best) best = n;
  }
  return best;
}

}  // namespace walferry::walfmt
