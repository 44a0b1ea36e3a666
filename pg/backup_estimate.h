// The size a base backup will have, asked of the server before pg_basebackup
// starts, so `walferry basebackup` can show a percentage and an ETA (as
// pg_basebackup -P does from its own estimate).
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace walferry::pg {

// The connection options (-h/--host, -p/--port, -U/--username, -d/--dbname,
// in any of getopt's spellings) among `pg_basebackup_args`, as psql arguments.
std::vector<std::string> ConnectionArgs(const std::vector<std::string>& pg_basebackup_args);

// Bytes of all tablespaces (sum of pg_tablespace_size), or, when the user may
// not read those, of all databases (pg_database_size), plus one WAL segment
// (what -X fetch adds at least). Runs psql -w (never
// prompts for a password). kNetwork with psql's message when it cannot ask.
Result<long long> EstimateBackupSize(const std::vector<std::string>& pg_basebackup_args,
                                     const std::string& pgbin);

}  // namespace walferry::pg
