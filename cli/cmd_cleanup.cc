// `walferry cleanup`: archive_cleanup_command.
#include <sys/stat.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <ctime>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/protocol.h"
#include "archive/archive.h"
#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/metrics.h"
#include "cli/s3_options.h"
#include "cli/progress.h"
#include "core/names.h"
#include "core/path.h"
#include "pg/backup_estimate.h"
#include "pg/archive_ops.h"
#include "pg/config.h"
#include "pg/process.h"
#include "pg/standby.h"
#include "pg/status.h"
#include "pg/version.h"
#include "transport/net.h"

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
    auto arch = OpenArchiveRoot(a->root);
    if (!arch.ok()) return void(Fail(ctx, arch.error()));
    auto cluster = pg::ResolveCluster(**arch, a->cluster);
    if (!cluster.ok()) return void(Fail(ctx, cluster.error()));
    auto r = pg::CleanupArchive(**arch, *cluster, a->restart_point, a->dry_run);
    if (!r.ok()) return void(Fail(ctx, r.error()));
    if (a->verbose || a->dry_run) {
      for (const auto& n : r->removed) std::printf("%s%s\n", a->dry_run ? "would remove " : "removed ", n.c_str());
    }
  });
}

}  // namespace walferry::cli
