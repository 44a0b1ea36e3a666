// Building and promoting a standby: unpack a stored base backup into an empty
// data directory and write the standby configuration for its major version
// (restore-base); promote it (promote); write the primary's settings (setup).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/stream.h"
#include "pg/config.h"

namespace walferry::pg {

// Refuses (kExists) a non-empty `pgdata` unless `force`, in which case its
// contents are removed (never while a postmaster.pid names a live process).
// Creates it (mode 0700) when missing.
Status PrepareEmptyDataDir(const std::string& pgdata, bool force);

// Streams a tar archive (as pg_basebackup -Ft writes it) from `read_into`
// through `tar -x -C pgdata`. `read_into` writes the raw tar bytes to the sink
// it is given. Fails when tar fails; then the directory holds a partial copy
// (PrepareEmptyDataDir with force cleans it). The caller ignores SIGPIPE, so
// that a tar that dies early gives EPIPE instead of killing the process.
Status UnpackTar(const std::string& pgdata, const std::function<Status(ByteSink&)>& read_into);

struct StandbyWriteResult {
  int major = 0;
  std::vector<std::string> files;  // written, relative to pgdata
};
// Detects the major version of the unpacked data directory, fills
// options.major, and writes recovery.conf (10/11) or standby.signal (12+) and
// the postgresql.auto.conf edits; chmods pgdata 0700.
Result<StandbyWriteResult> WriteStandbyConfig(const std::string& pgdata, StandbyOptions options);

struct ApplyResult {
  std::vector<std::string> changed;  // files written (a backup copy of each kept)
  std::vector<std::string> backups;
};
// Writes `settings` into PGDATA/postgresql.auto.conf and appends `hba_line`
// (when set and not yet there) to `hba_file`. Each changed file is first
// copied to FILE.walferry-YYYYmmddTHHMMSS, then replaced atomically, keeping
// its owner and mode.
Result<ApplyResult> ApplyPrimaryConfig(const std::string& pgdata, const std::vector<Setting>& settings,
                                       const std::string& hba_line, const std::string& hba_file);

// The effective settings of a data directory: postgresql.conf then
// postgresql.auto.conf (include files are not followed).
std::map<std::string, std::string> CurrentSettings(const std::string& pgdata);

// pg_ctl promote -D pgdata -w (PostgreSQL 10..17; no trigger files needed).
// kInvalidArgument when pgdata is not a standby (no standby.signal/recovery.conf).
Status Promote(const std::string& pgdata, const std::string& pgbin, int wait_seconds);

}  // namespace walferry::pg
