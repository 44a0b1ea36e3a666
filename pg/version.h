// PostgreSQL major-version detection. walferry supports majors 10..17; the
// configuration it writes depends on the major (see pg/config.h).
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace walferry::pg {

inline constexpr int kMinMajor = 10;
inline constexpr int kMaxMajor = 17;

// Parses the content of PGDATA/PG_VERSION ("15\n"; "9.6\n" -> 9).
// kInvalidArgument when it is not a version.
Result<int> ParseMajorVersion(std::string_view text);
// server_version_num ("150004" -> 15, "90624" -> 9).
Result<int> MajorFromVersionNum(std::string_view text);
// `pg_config --version` / `psql --version` output ("PostgreSQL 15.20 (Debian ...)",
// "psql (PostgreSQL) 16.1") -> 15 / 16.
Result<int> MajorFromVersionOutput(std::string_view text);
// kUnsupported "PostgreSQL N is not supported (10..17)" outside the range.
Status CheckSupported(int major);

// Reads PGDATA/PG_VERSION. kNotFound when PGDATA is not a data directory.
Result<int> DetectMajorVersion(const std::string& pgdata);

}  // namespace walferry::pg
