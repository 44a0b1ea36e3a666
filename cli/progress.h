// A pv / pg_basebackup -P style progress line on stderr for long transfers
// (`send`, `basebackup`): bytes done, rate, and, when the total is known or
// estimated, a bar, the percentage and an ETA. Redrawn in place with '\r' at
// most 4 times a second; only on a terminal unless forced (--progress).
//
// Thread-safety: one Progress is updated by one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace walferry::cli {

enum class ProgressMode { kAuto, kOn, kOff };

// Adds --progress / --no-progress to `sub`; the last one given wins.
void AddProgressOptions(CLI::App* sub, ProgressMode* mode);

// kOn -> true, kOff -> false, kAuto -> whether stderr is a terminal.
bool ProgressEnabled(ProgressMode mode);

// One rendered line, without '\r' or newline: "  12.3 MiB / 80.0 MiB
// [=====>      ]  15%  41.2 MiB/s  ETA 0:02". `total` <= 0: no bar, no ETA.
// A total exceeded (an estimate that was low) shows 99% and no ETA.
std::string FormatProgress(std::uint64_t done, long long total, double seconds, bool final);

class Progress {
 public:
  // `total`: expected bytes, <= 0 when unknown; `label` starts the line.
  Progress(std::string label, long long total, bool enabled);
  // Redraws the line (rate-limited).
  void Update(std::uint64_t done);
  // Draws the final line (total time and mean rate) and ends it with a newline.
  void Finish(std::uint64_t done);
  // Ends the current line so a message printed next starts on its own line.
  void Break();
  bool enabled() const { return enabled_; }

 private:
  using Clock = std::chrono::steady_clock;
  void Draw(std::uint64_t done, bool final);
  std::string label_;
  long long total_;
  bool enabled_;
  bool drawn_ = false;
  std::size_t last_width_ = 0;
  Clock::time_point t0_, last_;
};

}  // namespace walferry::cli
