// `walferry verify --from A --from B`: compares two archives entry by entry
// (names on one side only; same name with different content, by the XXH3-128
// of the raw content, which each read verifies). docs/fanout.md.
#pragma once

#include <string>
#include <vector>

#include "archive/archive.h"
#include "core/result.h"

namespace walferry::pg {

struct CompareReport {
  std::string cluster;
  std::size_t both = 0;                    // names on both sides with the same content
  std::vector<std::string> only_a, only_b; // names missing on the other side
  std::vector<std::string> different;      // "NAME A-HASH B-HASH"
  std::vector<std::string> unreadable;     // "NAME: side: error" (corrupt or unreadable)
  bool clean() const { return only_a.empty() && only_b.empty() && different.empty() && unreadable.empty(); }
};

// Compares every cluster of either archive (or only `clusters`), WAL and
// other files. Errors only when an archive cannot be listed at all.
Result<std::vector<CompareReport>> CompareArchives(const archive::Archive& a, const archive::Archive& b,
                                                   const std::vector<std::string>& clusters);

}  // namespace walferry::pg
