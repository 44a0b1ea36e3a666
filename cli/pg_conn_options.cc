#include "cli/pg_conn_options.h"

namespace walferry::cli {

void AddPgConnOptions(CLI::App* c, pg::ConnOptions* conn, const std::string& pgdata_help,
                      const std::string& user_help) {
  c->add_option("--pgdata,-D", conn->pgdata, pgdata_help);
  c->add_option("-h,--host", conn->host, "server host or socket directory");
  c->add_option("-p,--port", conn->port, "server port");
  c->add_option("-U,--username", conn->user, user_help);
  c->add_option("-d,--dbname", conn->dbname, "database")->capture_default_str();
  c->add_option("--pgbin", conn->pgbin, "directory of psql");
}

}  // namespace walferry::cli
