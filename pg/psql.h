// Asking a running PostgreSQL server through psql -XAtw (no libpq dependency,
// never a password prompt): `walferry status` and `walferry check`.
// Thread-safety: a Psql is used by one thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace walferry::pg {

struct ConnOptions {
  std::string pgdata;  // optional: port/socket from postmaster.pid, .ready count
  std::string host;    // as psql -h
  std::string port;    // as psql -p
  std::string user;    // as psql -U
  std::string dbname = "postgres";
  std::string pgbin;   // directory of psql; "" = find it
  std::string agent_socket;  // status: the agent's socket ("" = find it, see AgentSocketPath)
};

// Splits at every `sep` (an empty field between two separators is kept).
std::vector<std::string> Split(std::string_view s, char sep);

class Psql {
 public:
  // `major` picks /usr/lib/postgresql/<major>/bin/psql when > 0. Host and port
  // default to postmaster.pid's socket directory and port when pgdata is set.
  Psql(const ConnOptions& c, int major);
  // Rows of fields. kNetwork "psql: <its first error line>" when psql fails
  // (cannot connect, SQL error); kNotFound when psql is missing.
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) const;
  // The single value of a one-row, one-column query.
  Result<std::string> Value(const std::string& sql) const;
  // Where psql connects, for messages: "host:port" as resolved.
  const std::string& target() const { return target_; }

 private:
  std::vector<std::string> args_;
  std::string target_;
};

}  // namespace walferry::pg
