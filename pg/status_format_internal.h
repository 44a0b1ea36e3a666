// Formatting helpers of `walferry status` (status_text.cc, status_json.cc,
// status_check.cc); only pg/ includes this.
#pragma once

#include <optional>
#include <string>

#include "pg/status.h"

namespace walferry::pg::internal {

// "512 B", "1.5 KiB", ... (core/format.h).
std::string Bytes(double b);
// "45 s", "12 min", "3.5 h", "4 days"; "-" for a negative age.
std::string Age(double s);
// One decimal.
std::string Num1(double v);
std::string OrDash(const std::string& s);
// Three decimals; null for a negative value.
std::string JsonDouble(double v);
std::string JsonNum(const std::optional<std::int64_t>& v);
// A failure is current when PostgreSQL's last archiving event is a failure.
bool FailingNow(const ServerStatus& s);

// ANSI colours, only when `on` (a terminal).
struct Paint {
  bool on;
  std::string operator()(const std::string& text, const char* code) const {
    return on ? std::string("\033[") + code + "m" + text + "\033[0m" : text;
  }
};
inline constexpr const char* kGreen = "32";
inline constexpr const char* kYellow = "33";
inline constexpr const char* kRed = "31";
inline constexpr const char* kBold = "1";

}  // namespace walferry::pg::internal
