// Human-readable figures for the one line a user reads.
#pragma once
#include <cstdio>
#include <string>

namespace walferry {

// "512 B", "1.5 KiB", "16.0 MiB", ... (binary units, one decimal above bytes).
inline std::string HumanBytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024.0 && u < 4) {
    b /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, unit[u]);
  return buf;
}

}  // namespace walferry
