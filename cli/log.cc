#include "cli/log.h"

#include <chrono>
#include <cstdlib>
#include <ctime>

namespace walferry::cli {

Result<LogLevel> ParseLogLevel(std::string_view t) {
  if (t == "debug") return LogLevel::kDebug;
  if (t == "info") return LogLevel::kInfo;
  if (t == "warn" || t == "warning") return LogLevel::kWarn;
  if (t == "error") return LogLevel::kError;
  return Error(ErrorCode::kInvalidArgument,
               "--log-level must be debug, info, warn or error, not \"" + std::string(t) + "\"");
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

CLI::Option* AddLogLevelOption(CLI::App* sub, std::string* level) {
  return sub->add_option("--log-level", *level, "Events shown: debug, info (default), warn, error");
}

Logger::Logger(LogLevel min_level, std::FILE* out, bool journal) : min_(min_level), out_(out), journal_(journal) {}

Logger Logger::ForStderr(LogLevel min_level) {
  const char* js = std::getenv("JOURNAL_STREAM");
  return Logger(min_level, stderr, js != nullptr && *js != '\0');
}

std::string Logger::Format(LogLevel level, std::string_view message, bool journal, long long now_ms) {
  std::string line;
  if (journal) {
    // sd-daemon(3) priority prefixes: 7 debug, 6 info, 4 warning, 3 err.
    static constexpr const char* kPrio[] = {"<7>", "<6>", "<4>", "<3>"};
    line = kPrio[static_cast<int>(level)];
  } else {
    std::time_t secs = static_cast<std::time_t>(now_ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    char ms[8];
    std::snprintf(ms, sizeof ms, ".%03dZ ", static_cast<int>(now_ms % 1000));
    line = std::string(buf) + ms;
  }
  line += LogLevelName(level);
  line += ' ';
  for (char c : message) line += (c == '\n' || c == '\r') ? ' ' : c;  // one event, one line
  line += '\n';
  return line;
}

void Logger::Log(LogLevel level, std::string_view message) {
  if (!Enabled(level)) return;
  long long now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  std::string line = Format(level, message, journal_, now_ms);
  std::lock_guard<std::mutex> lock(mu_);
  std::fputs(line.c_str(), out_);
  std::fflush(out_);
}

LogLevel ServeEventLevel(std::string_view line) {
  for (std::string_view bad : {" error=", "refused", "too many", "went away", "serve: dropped "}) {
    if (line.find(bad) != std::string_view::npos) return LogLevel::kWarn;
  }
  return LogLevel::kInfo;
}

}  // namespace walferry::cli
