// `walferry status`: what a running server says about replication and
// archiving (through psql -XAt, so no libpq dependency), the archive backlog
// and rates read from PGDATA/pg_wal/archive_status, and the archive's newest
// segment, holes, size and last write per cluster (receiver side).
//
// Rates come from the archive_status files PostgreSQL keeps: a segment's
// .ready file is created when the segment is complete (its mtime), and renamed
// to .done once archived (rename sets the file's ctime). A checkpoint removes
// the .done files of recycled segments, so a window reaching back before the
// last checkpoint may undercount both rates alike.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/psql.h"
#include "pg/push_failure.h"

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
  std::int64_t ready_bytes = -1;  // size of the WAL files those .ready name
  double oldest_ready_age_s = -1; // age of the oldest .ready; -1 when none
  int rate_window_s = 300;
  std::int64_t written_in_window = -1;   // segments completed in the window (.ready/.done mtime)
  std::int64_t archived_in_window = -1;  // segments archived in the window (.done ctime)
  double last_archived_age_s = -1, last_failed_age_s = -1;  // -1 = never
  std::string archive_mode, archive_command, archive_library;
  std::optional<PushFailure> push_failure;  // walferry push's last recorded reason
  // The local agent (walferry agent): its socket answers connect(); `agent`
  // holds what its STATUS answered (filled by the caller, which speaks the
  // agent's protocol), empty when it was not asked or did not answer.
  std::string agent_socket;
  bool agent_running = false;
  std::map<std::string, std::string> agent;
  // On a standby:
  std::string receive_lsn, replay_lsn, replay_time, wal_receiver_status;
};

// Runs psql; kNetwork when it cannot connect (its message), kNotFound when
// psql is missing.
Result<ServerStatus> QueryServerStatus(const ConnOptions& conn);

// Counts PGDATA/pg_wal/archive_status/*.ready.
Result<std::int64_t> CountReady(const std::string& pgdata);

struct ArchiveStatusScan {
  std::int64_t ready_count = 0, ready_bytes = 0;
  double oldest_ready_age_s = -1;
  std::int64_t written_in_window = 0, archived_in_window = 0;
};
// Reads PGDATA/pg_wal/archive_status at time `now` (Unix seconds) with a rate
// window of `window_s` seconds (see the file comment). kIo/kNotFound when the
// directory cannot be read.
Result<ArchiveStatusScan> ScanArchiveStatus(const std::string& pgdata, double now, int window_s);

// Where the agent listens: `explicit_path`, else the --agent-socket of a
// `walferry push` archive_command, else the server's walferry_archive.socket
// (`module_socket`), else $WALFERRY_AGENT_SOCKET, else /run/walferry/agent.sock.
std::string AgentSocketPath(const std::string& explicit_path, const std::string& archive_command,
                            const std::string& module_socket);
// Whether something accepts connections on the unix socket `path`.
bool AgentRunning(const std::string& path);

// Thresholds of `walferry status --check`; a negative value is not checked.
struct Thresholds {
  std::int64_t max_backlog = 16;        // .ready segments
  double max_oldest_age_s = 300;        // age of the oldest .ready
  double max_since_success_s = 900;     // last archived this long ago while a backlog waits
};
// One line per breached threshold ("backlog 40 segments > 16", ...), plus
// archiving failures PostgreSQL reports as the latest event; empty = healthy.
std::vector<std::string> CheckThresholds(const ServerStatus& s, const Thresholds& t);
// The one-line summary of --check ("ARCHIVE OK - ..." / "ARCHIVE CRITICAL - ...").
std::string CheckSummary(const ServerStatus& s, const std::vector<std::string>& breaches);

struct ArchiveUsage {
  std::uint64_t bytes = 0;     // size on disk of the cluster's files
  double last_write_age_s = -1;  // age of the newest file; -1 when empty
};
// Walks ROOT/CLUSTER (wal/ and files/).
ArchiveUsage ClusterUsage(const std::string& root, const std::string& cluster, double now);

std::string JsonString(std::string_view s);
// `usage`, when given, holds ClusterUsage for each report (same order).
// `colour`: ANSI colours (a terminal only).
std::string StatusText(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive,
                       const std::vector<ArchiveUsage>* usage = nullptr, bool colour = false);
std::string StatusJson(const std::optional<ServerStatus>& server,
                       const std::vector<ClusterReport>* archive,
                       const std::vector<ArchiveUsage>* usage = nullptr);

}  // namespace walferry::pg
