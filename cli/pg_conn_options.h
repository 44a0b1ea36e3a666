// The psql connection options (-D -h -p -U -d --pgbin) that `walferry status`
// and `walferry check` take, declared once.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "pg/psql.h"

namespace walferry::cli {

// Adds --pgdata/-D, -h, -p, -U, -d and --pgbin to `c`, filling `conn`; the
// two help texts are the command's own (what it needs the data directory and
// the user for). `conn` must outlive `c`'s parse.
void AddPgConnOptions(CLI::App* c, pg::ConnOptions* conn, const std::string& pgdata_help,
                      const std::string& user_help);

}  // namespace walferry::cli
