// The reason of the last failed `walferry push`, kept where `walferry status`
// finds it: PostgreSQL's pg_stat_archiver says when archiving failed, but the
// reason is only in the server log. push writes one line to
// <dir of %p>/.walferry-push-failure (PGDATA/pg_wal: pg_basebackup does not
// copy pg_wal's contents, and PostgreSQL ignores names that are not WAL names)
// and removes it after the next success. Paths outside a pg_wal directory are
// not recorded.
#pragma once

#include <ctime>
#include <optional>
#include <string>

#include "core/result.h"

namespace walferry::pg {

inline constexpr const char* kPushFailureFile = ".walferry-push-failure";

struct PushFailure {
  std::time_t when = 0;
  std::string name;    // the WAL file push was given
  std::string reason;  // its one-line error
};

// Best effort (status is advisory): replaces the record atomically; errors
// are returned but callers may ignore them.
Status RecordPushFailure(const std::string& wal_path, const std::string& reason);
// Removes the record next to `wal_path` (after a success); no error when absent.
void ClearPushFailure(const std::string& wal_path);
// The record in PGDATA/pg_wal; nullopt when there is none or it is unreadable.
std::optional<PushFailure> ReadPushFailure(const std::string& pgdata);

}  // namespace walferry::pg
