// `walferry cleanup`: archive_cleanup_command.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/result.h"
#include "pg/archive_ops.h"

namespace walferry::cli {
using namespace pgcmd;

void AddCleanup(CLI::App& app, Context& ctx) {
  struct Args {
    std::string restart_point, root, cluster, config;
    bool dry_run = false, verbose = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "cleanup", "archive_cleanup_command: remove archived WAL older than the restart point");
  c->footer(
      "Removes this cluster's archived segments (and .partial/.backup files) strictly older\n"
      "than RESTART_POINT (%r), by the log/segment part of the name as pg_archivecleanup\n"
      "does. Never a .history file, never anything at or after the restart point.\n\n"
      "postgresql.conf on the standby:\n"
      "  archive_cleanup_command = 'walferry cleanup %r --root /srv/walferry'");
  c->add_option("RESTART_POINT", a->restart_point, "oldest WAL file still needed (%r)")->required();
  c->add_option("--root,--from", a->root, "archive ROOT directory");
  c->add_option("--cluster", a->cluster, "cluster directory under ROOT (default: the only one, or main)");
  AddConfigOption(c, &a->config);
  c->add_flag("-n,--dry-run", a->dry_run, "list what would be removed");
  c->add_flag("-v,--verbose", a->verbose, "print each removed name");
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    auto opened = OpenCluster(a->root, a->cluster);
    if (!opened.ok()) return void(Fail(ctx, opened.error()));
    auto r = pg::CleanupArchive(*opened->archive, opened->cluster, a->restart_point, a->dry_run);
    if (!r.ok()) return void(Fail(ctx, r.error()));
    if (a->verbose || a->dry_run) {
      for (const auto& n : r->removed) std::printf("%s%s\n", a->dry_run ? "would remove " : "removed ", n.c_str());
    }
  });
}

}  // namespace walferry::cli
