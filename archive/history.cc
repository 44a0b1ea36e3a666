// Timeline history files (NNNNNNNN.history), read by PostgreSQL's rules
// (readTimeLineHistory in src/backend/access/transam/timeline.c): one line per
// switch, "parentTLI <tab> switchpoint X/X <tab> reason"; blank lines and lines
// whose first non-blank character is '#' are skipped; the parent timelines
// increase strictly and are all below the file's own timeline.
#include <cctype>
#include <string>

#include <fcntl.h>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/fd.h"

namespace walferry::archive {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Parses hex digits at s[*i..] into a u32 (at least one digit, at most 8).
bool ParseHexField(std::string_view s, std::size_t* i, std::uint32_t* out) {
  std::uint64_t v = 0;
  std::size_t start = *i;
  while (*i < s.size() && HexValue(s[*i]) >= 0) {
    v = v * 16 + static_cast<std::uint64_t>(HexValue(s[*i]));
    if (v > 0xFFFFFFFFull) return false;
    ++*i;
  }
  *out = static_cast<std::uint32_t>(v);
  return *i > start;
}

bool IsBlank(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

}  // namespace

std::uint32_t HistoryNameTimeline(std::string_view name) {
  if (name.size() != 16 || !name.ends_with(".history")) return 0;
  std::uint32_t tli = 0;
  for (char c : name.substr(0, 8)) {
    int v = HexValue(c);
    if (v < 0 || (c >= 'a' && c <= 'f')) return 0;
    tli = tli * 16 + static_cast<std::uint32_t>(v);
  }
  return tli;
}

Result<std::vector<TimelineSwitch>> ParseTimelineHistory(std::string_view text, std::uint32_t timeline) {
  auto bad = [&](std::size_t line_no, const std::string& why) {
    return Error(ErrorCode::kCorrupt, "timeline history of timeline " + std::to_string(timeline) +
                                          ", line " + std::to_string(line_no) + ": " + why);
  };
  if (timeline < 2) {
    return Error(ErrorCode::kCorrupt, "timeline " + std::to_string(timeline) + " has no history file");
  }
  if (text.size() > kMaxHistoryBytes) {
    return Error(ErrorCode::kCorrupt, "timeline history larger than " + std::to_string(kMaxHistoryBytes) +
                                          " bytes");
  }
  if (text.find('\0') != std::string_view::npos) {
    return Error(ErrorCode::kCorrupt, "timeline history contains a NUL byte");
  }
  std::vector<TimelineSwitch> out;
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    std::size_t i = 0;
    while (i < line.size() && IsBlank(line[i])) ++i;
    if (i == line.size() || line[i] == '#') continue;
    std::uint64_t tli = 0;
    std::size_t digits = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
      tli = tli * 10 + static_cast<std::uint64_t>(line[i] - '0');
      if (tli > 0xFFFFFFFFull) return bad(line_no, "timeline ID out of range");
      ++i;
      ++digits;
    }
    if (digits == 0) return bad(line_no, "expected a numeric timeline ID");
    while (i < line.size() && IsBlank(line[i])) ++i;
    std::uint32_t hi = 0, lo = 0;
    if (!ParseHexField(line, &i, &hi) || i >= line.size() || line[i] != '/' ||
        !(++i, ParseHexField(line, &i, &lo))) {
      return bad(line_no, "expected a switch point X/X");
    }
    if (!out.empty() && tli <= out.back().parent) {
      return bad(line_no, "timeline IDs must be in increasing sequence");
    }
    out.push_back(TimelineSwitch{static_cast<std::uint32_t>(tli), (std::uint64_t{hi} << 32) | lo});
  }
  if (!out.empty() && out.back().parent >= timeline) {
    return Error(ErrorCode::kCorrupt, "timeline history of timeline " + std::to_string(timeline) +
                                          ": timeline IDs must be less than the file's own");
  }
  if (out.empty()) {
    return Error(ErrorCode::kCorrupt, "timeline history of timeline " + std::to_string(timeline) +
                                          " names no parent timeline");
  }
  return out;
}

}  // namespace walferry::archive

namespace walferry::archive::internal {
namespace {

class StringSink final : public ByteSink {
 public:
  Status Write(std::span<const std::byte> data) override {
    if (text.size() + data.size() > kMaxHistoryBytes) {
      return Error(ErrorCode::kCorrupt, "timeline history larger than " + std::to_string(kMaxHistoryBytes) +
                                            " bytes");
    }
    text.append(reinterpret_cast<const char*>(data.data()), data.size());
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  std::string text;
};

}  // namespace

Status CheckHistoryData(int dirfd, const std::string& file, StoreFormat format, std::string_view name) {
  const std::uint32_t tli = HistoryNameTimeline(name);
  if (tli == 0) return Status::Ok();
  WF_ASSIGN(UniqueFd fd, OpenAt(dirfd, file, O_RDONLY | O_NOFOLLOW));
  StringSink sink;
  WF_TRY(ReadStored(fd.get(), file, format, sink));
  auto parsed = ParseTimelineHistory(sink.text, tli);
  if (!parsed.ok()) return parsed.error();
  return Status::Ok();
}

}  // namespace walferry::archive::internal
