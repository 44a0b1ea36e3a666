// libFuzzer target for timeline history files (ParseTimelineHistory), the
// only 8-hex .history content the receiver accepts. Properties besides "no
// crash": an accepted history has at least one switch, strictly increasing
// parent timelines, all below the file's timeline.
// Input: first byte (mod 8, + 2) is the file's timeline, the rest its text.
// Seed corpus: fuzz/corpus/history (files PostgreSQL 15 wrote, by hand edits).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "archive/archive.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint32_t tli = 2u + data[0] % 8u;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  auto h = walferry::archive::ParseTimelineHistory(text, tli);
  if (h.ok()) {
    bool good = !h->empty() && h->back().parent < tli;
    for (std::size_t i = 1; i < h->size(); ++i) good = good && (*h)[i - 1].parent < (*h)[i].parent;
    if (!good) {
      std::fprintf(stderr, "property violated: accepted history out of order\n");
      std::abort();
    }
  }
  return 0;
}
