// PostgreSQL configuration that walferry generates: the standby settings
// (restore-base), the primary settings (setup primary), and the small text
// edits of postgresql.auto.conf, recovery.conf and pg_hba.conf.
//
// Version rules (PostgreSQL documentation of each major):
//   10, 11  recovery.conf: standby_mode = 'on', primary_conninfo, restore_command,
//           archive_cleanup_command, recovery_target_timeline, trigger_file.
//   12..    standby.signal + the same parameters as ordinary settings (here
//           in postgresql.auto.conf); recovery.conf is refused at startup.
//           recovery_target_timeline defaults to 'latest'.
//   12..15  promote_trigger_file (optional); removed in 16.
//   10..12  wal_keep_segments;  13..  wal_keep_size (megabytes).
// All functions are pure (no I/O) and thread-safe.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace walferry::pg {

// Quotes a configuration value as ALTER SYSTEM does: 'it''s' (single quotes
// and backslashes doubled, because the configuration-file parser treats a
// backslash as an escape). Values with a newline, carriage return or NUL cannot
// be written to a configuration file: kInvalidArgument.
Result<std::string> QuoteConfValue(std::string_view value);
// Quotes one word for /bin/sh ('...' with embedded quotes as '\''), unquoted
// when it only has safe characters. Used in restore_command/archive_command.
std::string ShellQuote(std::string_view word);
// Quotes a libpq conninfo value (host=..., user=...): bare when safe, else
// '...' with \ and ' backslash-escaped.
std::string ConninfoQuote(std::string_view value);

struct Setting {
  std::string name;
  std::string value;           // unquoted
  bool needs_restart = false;  // a postmaster-context parameter
};
// "name = 'value'". kInvalidArgument when the value cannot be written.
Result<std::string> RenderSetting(const Setting& s);

// --- standby (restore-base) ---
struct StandbyOptions {
  int major = 0;
  std::string primary_conninfo;         // "" = archive-only standby
  std::string restore_command;          // required
  std::string archive_cleanup_command;  // "" = none
  std::string trigger_file;             // 10/11: trigger_file; 12..15: promote_trigger_file;
                                        // 16+: kInvalidArgument when set
  std::string primary_slot_name;        // "" = none
  bool disable_archiving = true;        // archive_mode = 'off' on the standby (as the guide does)
};

struct StandbyConfig {
  std::string recovery_conf;        // 10/11: content of PGDATA/recovery.conf; else ""
  bool standby_signal = false;      // 12+: create PGDATA/standby.signal
  std::vector<Setting> auto_conf;   // settings for postgresql.auto.conf
  // Parameters to remove from postgresql.auto.conf (recovery settings a copy
  // of the primary's file may carry, and 12+ names on 10/11).
  std::vector<std::string> auto_conf_remove;
};
// kUnsupported outside 10..17; kInvalidArgument on an empty restore_command or
// an unwritable value.
Result<StandbyConfig> MakeStandbyConfig(const StandbyOptions& options);

// --- primary (setup primary) ---
struct PrimaryOptions {
  int major = 0;
  int max_wal_senders = 10;
  int wal_keep_mb = 512;               // wal_keep_size; wal_keep_segments = this / 16
  std::string archive_command = "walferry push %p";
  int archive_timeout = 60;            // seconds
  std::string standby_address;         // "" = no pg_hba.conf line
  std::string replication_user = "all";
  std::string auth_method;             // "" = scram-sha-256 on 14+, md5 before
};

struct PrimaryConfig {
  std::vector<Setting> settings;  // in the guide's order
  std::string hba_line;           // "" when no standby address was given
};
Result<PrimaryConfig> MakePrimaryConfig(const PrimaryOptions& options);

// "192.168.0.10" -> "192.168.0.10/32", "::1" -> "::1/128"; a CIDR or a host
// name is kept. kInvalidArgument on whitespace or an empty address.
Result<std::string> HbaAddress(std::string_view address);

// --- configuration-file text ---
// Parses "name = value" lines (ignores comments, blank lines and include
// directives); values unquoted. Later lines win, names lower-cased.
std::map<std::string, std::string> ParseConf(std::string_view text);

// Returns `existing` postgresql.auto.conf (or any conf) text with every line
// setting a name in `remove` or in `set` dropped and `set` appended in order.
// Adds ALTER SYSTEM's header when the text is empty.
Result<std::string> EditConf(std::string_view existing, const std::vector<Setting>& set,
                             const std::vector<std::string>& remove = {});

// True when pg_hba.conf text already has `line` (compared word by word,
// ignoring comments).
bool HbaHasLine(std::string_view hba_text, std::string_view line);

// The parameters whose effective value (ParseConf over postgresql.conf then
// postgresql.auto.conf, else PostgreSQL's default for `major`) differs from
// `wanted` and that only take effect after a restart.
std::vector<std::string> RestartNeeded(int major, const std::map<std::string, std::string>& current,
                                       const std::vector<Setting>& wanted);

}  // namespace walferry::pg
