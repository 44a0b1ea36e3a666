// The fan-out backlog's entry and target-state parsers (pg/backlog.h): any
// bytes parse or are refused, never crash; what parses formats back to text
// that parses to the same fields.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "pg/backlog.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using namespace walferry::pg;
  if (auto e = ParseBacklogEntry(text)) {
    auto again = ParseBacklogEntry(FormatBacklogEntry(*e));
    if (!again || again->name != e->name || again->source != e->source || again->target != e->target ||
        again->added_ns != e->added_ns) {
      __builtin_trap();
    }
  }
  if (auto s = ParseTargetState(text)) {
    auto again = ParseTargetState(FormatTargetState(*s));
    if (!again || again->target != s->target || again->last_ok != s->last_ok) __builtin_trap();
  }
  (void)TargetKey(text);
  return 0;
}
