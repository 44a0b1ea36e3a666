#include "pg/backup_estimate.h"

#include <cstdlib>
#include <string_view>

#include "pg/process.h"

namespace walferry::pg {

std::vector<std::string> ConnectionArgs(const std::vector<std::string>& args) {
  struct Opt {
    char short_name;
    std::string_view long_name;
  };
  static constexpr Opt kOpts[] = {{'h', "--host"}, {'p', "--port"}, {'U', "--username"}, {'d', "--dbname"}};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view a = args[i];
    for (const Opt& o : kOpts) {
      std::string value;
      bool found = false;
      if (a.size() >= 2 && a[0] == '-' && a[1] == o.short_name) {
        if (a.size() > 2) {
          value = a.substr(2);
          found = true;
        } else if (i + 1 < args.size()) {
          value = args[++i];
          found = true;
        }
      } else if (a == o.long_name && i + 1 < args.size()) {
        value = args[++i];
        found = true;
      } else if (a.size() > o.long_name.size() && a.starts_with(o.long_name) && a[o.long_name.size()] == '=') {
        value = a.substr(o.long_name.size() + 1);
        found = true;
      }
      if (found) {
        out.push_back(std::string("-") + o.short_name);
        out.push_back(value);
        break;
      }
    }
  }
  return out;
}

Result<long long> EstimateBackupSize(const std::vector<std::string>& pg_basebackup_args,
                                     const std::string& pgbin) {
  std::vector<std::string> base = {FindPgProgram("psql", 0, pgbin), "-X", "-A", "-t", "-q", "-w"};
  bool has_db = false;
  for (const auto& a : ConnectionArgs(pg_basebackup_args)) {
    if (a == "-d") has_db = true;
    base.push_back(a);
  }
  // pg_basebackup's -d is a connection string; psql needs a database in it.
  if (!has_db) base.insert(base.end(), {"-d", "postgres"});
  std::string last_error;
  // -X fetch adds the WAL written during the backup: at least one segment.
  constexpr const char* kWal =
      " + coalesce((SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'), 0)";
  for (std::string sql : {std::string("SELECT sum(pg_tablespace_size(oid))::bigint") + kWal + " FROM pg_tablespace",
                          std::string("SELECT sum(pg_database_size(datname))::bigint") + kWal +
                              " FROM pg_database WHERE datallowconn AND has_database_privilege(datname, 'CONNECT')"}) {
    auto argv = base;
    argv.insert(argv.end(), {"-c", sql});
    WF_ASSIGN(RunResult r, Run(argv));
    if (r.exit_code == 0) {
      char* end = nullptr;
      long long v = std::strtoll(r.out.c_str(), &end, 10);
      if (end != r.out.c_str() && v > 0) return v;
    }
    last_error = r.err.substr(0, r.err.find('\n'));
  }
  return Error(ErrorCode::kNetwork, "psql: " + (last_error.empty() ? "no size estimate" : last_error));
}

}  // namespace walferry::pg
