// `walferry status`: what a running server says about replication and
// archiving (through psql -XAt, so no libpq dependency), and the archive's
// newest segment and holes per cluster.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/psql.h"

namespace walferry::pg {

struct ReplicationRow {
  std::string application_name, client_addr, state, sync_state;
  // Bytes behind pg_current_wal_lsn(); nullopt when PostgreSQL reports NULL.
  std::optional<std::int64_t> sent_lag, write_lag, flush_lag, replay_lag;
};

struct ServerStatus {
  int major = 0;
  bool in_recovery = false;
  std::vector<ReplicationRow> replication;  // pg_stat_replication
  std::int64_t archived_count = 0, failed_count = 0;  // pg_stat_archiver
  std::string last_archived_wal, last_archived_time, last_failed_wal, last_failed_time;
  std::int64_t ready_count = -1;  // pg_wal/archive_status/*.ready; -1 without --pgdata
  // On a standby:
  std::string receive_lsn, replay_lsn, replay_time, wal_receiver_status;
};

// Runs psql; kNetwork when it cannot connect (its message), kNotFound when
// psql is missing.
Result<ServerStatus> QueryServerStatus(const ConnOptions& conn);

// Counts PGDATA/pg_wal/archive_status/*.ready.
Result<std::int64_t> CountReady(const std::string& pgdata);

std::string JsonString(std::string_view s);
std::string StatusJson(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive);
std::string StatusText(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive);

}  // namespace walferry::pg
