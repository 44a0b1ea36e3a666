// One line per event on stderr, with a level, for the long-running commands
// (`serve`, and the agent): "2026-12-01T09:40:00.123Z INFO serve: ...". Under
// systemd, whose journal stream sets JOURNAL_STREAM, no timestamp (journald
// adds its own) and a syslog priority prefix ("<6>") so that journalctl -p
// filters by level. --log-level hides events below the chosen level.
//
// Thread-safety: Log may be called from any thread; each line is written
// with one fputs under a mutex, so lines never interleave.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "core/result.h"

namespace walferry::cli {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// "debug", "info", "warn"/"warning", "error"; kInvalidArgument otherwise.
Result<LogLevel> ParseLogLevel(std::string_view text);
std::string_view LogLevelName(LogLevel level);

// Adds --log-level LEVEL (default info) to `sub`.
CLI::Option* AddLogLevelOption(CLI::App* sub, std::string* level);

class Logger {
 public:
  // `journal`: true when stderr is the journal (JOURNAL_STREAM is set).
  Logger(LogLevel min_level, std::FILE* out, bool journal);
  // The logger for stderr: journal mode when JOURNAL_STREAM is set.
  static Logger ForStderr(LogLevel min_level);
  bool Enabled(LogLevel level) const { return level >= min_; }
  void Log(LogLevel level, std::string_view message);
  // Formats one line (with its newline) as Log writes it; `now_ms` is the Unix
  // time in milliseconds (ignored in journal mode).
  static std::string Format(LogLevel level, std::string_view message, bool journal, long long now_ms);

 private:
  LogLevel min_;
  std::FILE* out_;
  bool journal_;
  std::mutex mu_;
};

// The level of a receiver event line (transport::Server's log lines): failures
// ("error=", "refused", "too many", "went away", "dropped") are warnings, the
// rest info.
LogLevel ServeEventLevel(std::string_view line);

}  // namespace walferry::cli
