// `walferry promote`.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "core/result.h"
#include "pg/standby.h"

namespace walferry::cli {
using namespace pgcmd;

void AddPromote(CLI::App& app, Context& ctx) {
  struct Args {
    std::string pgdata, pgbin;
    int timeout = 60;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("promote", "promote a standby to a primary (pg_ctl promote)");
  c->footer(
      "Runs `pg_ctl promote -D PGDATA -w` with the pg_ctl of the data directory's version\n"
      "(PostgreSQL 10..17; no trigger file needed, and 16+ has none) and waits until the\n"
      "server accepts writes. Run it as the data directory's owner.\n\n"
      "  walferry promote --pgdata /var/lib/postgresql/15/main\n"
      "for a standby whose postgresql.conf (or postgresql.auto.conf) has:\n"
      "  restore_command = 'walferry get %f %p --from /srv/walferry'");
  c->add_option("--pgdata,-D", a->pgdata, "the standby's data directory")->required();
  c->add_option("--pgbin", a->pgbin, "directory of pg_ctl");
  c->add_option("--timeout", a->timeout, "seconds to wait")->capture_default_str();
  c->callback([a, &ctx] {
    Status st = pg::Promote(Absolute(a->pgdata), a->pgbin, a->timeout);
    if (!st.ok()) return void(Fail(ctx, st.error()));
    std::printf("promoted %s\n", a->pgdata.c_str());
  });
}

}  // namespace walferry::cli
