#include "cli/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "core/format.h"

namespace walferry::cli {
namespace {

std::string Bytes(double b) { return HumanBytes(b); }

std::string Clock(double s) {
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

}  // namespace

void AddProgressOptions(CLI::App* sub, ProgressMode* mode) {
  sub->add_flag_callback("--progress", [mode] { *mode = ProgressMode::kOn; },
                         "Show a progress line (default: only on a terminal)");
  sub->add_flag_callback("--no-progress", [mode] { *mode = ProgressMode::kOff; },
                         "Never show the progress line");
}

bool ProgressEnabled(ProgressMode mode) {
  if (mode == ProgressMode::kOn) return true;
  if (mode == ProgressMode::kOff) return false;
  return ::isatty(STDERR_FILENO) == 1;
}

std::string FormatProgress(std::uint64_t done, long long total, double seconds, bool final) {
  const double d = static_cast<double>(done);
  const double rate = seconds > 0 ? d / seconds : 0;
  std::string line = Bytes(d);
  if (total > 0 && !final) {
    const double t = static_cast<double>(total);
    const bool over = d >= t;
    int pct = over ? 99 : static_cast<int>(100.0 * d / t);
    line += " / " + Bytes(t);
    constexpr int kBar = 24;
    int fill = std::min(kBar, static_cast<int>(kBar * std::min(d, t) / t));
    std::string bar(static_cast<std::size_t>(kBar), ' ');
    for (int i = 0; i < fill; ++i) bar[static_cast<std::size_t>(i)] = '=';
    if (fill < kBar) bar[static_cast<std::size_t>(fill)] = '>';
    char buf[64];
    std::snprintf(buf, sizeof buf, " [%s] %3d%%", bar.c_str(), pct);
    line += buf;
    line += "  " + Bytes(rate) + "/s";
    if (!over && rate > 0) {
      line += "  ETA " + Clock((t - d) / rate);
    } else {
      line += "  ETA --:--";
    }
  } else if (final) {
    line += " in " + Clock(seconds) + " (" + Bytes(rate) + "/s)";
  } else {
    line += "  " + Bytes(rate) + "/s  " + Clock(seconds);
  }
  return line;
}

Progress::Progress(std::string label, long long total, bool enabled)
    : label_(std::move(label)), total_(total), enabled_(enabled), t0_(Clock::now()), last_(t0_) {}

void Progress::Update(std::uint64_t done) {
  if (!enabled_) return;
  auto now = Clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(250)) return;
  last_ = now;
  Draw(done, false);
}

void Progress::Finish(std::uint64_t done) {
  if (!enabled_) return;
  Draw(done, true);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  drawn_ = false;
  last_width_ = 0;
}

void Progress::Break() {
  if (!enabled_ || !drawn_) return;
  std::fputc('\n', stderr);
  std::fflush(stderr);
  drawn_ = false;
  last_width_ = 0;
}

void Progress::Draw(std::uint64_t done, bool final) {
  double secs = std::chrono::duration<double>(Clock::now() - t0_).count();
  std::string line = label_ + FormatProgress(done, total_, secs, final);
  std::size_t width = line.size();
  if (width < last_width_) line.append(last_width_ - width, ' ');  // wipe a longer old line
  last_width_ = width;
  std::fprintf(stderr, "\r%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace walferry::cli
