// `walferry verify`: the archive's contents checked.
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

void AddVerify(CLI::App& app, Context& ctx) {
  struct Args {
    std::string root, config;
    std::vector<std::string> clusters;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "verify", "check every archived file's checksum and that no segment is missing");
  c->footer(
      "Reads every stored file in full (decompression verifies its checksums), checks each\n"
      "segment's page header and length, and looks for holes in each timeline's sequence.\n"
      "Prints what is corrupt or missing, and the newcomers kept in quarantine after a\n"
      "same-name-different-content refusal; exits 3 when there is any.\n\n"
      "  walferry verify --root /srv/walferry --cluster main\n"
      "checks the archive that this postgresql.conf line on the standby reads:\n"
      "  restore_command = 'walferry get %f %p --from /srv/walferry'");
  c->add_option("--root,--from", a->root, "archive ROOT directory");
  c->add_option("--cluster", a->clusters, "cluster(s) to check (default: all)");
  AddConfigOption(c, &a->config);
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    auto arch = OpenArchiveRoot(a->root);
    if (!arch.ok()) return void(Fail(ctx, arch.error()));
    auto reports = pg::InspectArchive(**arch, a->clusters, /*full=*/true);
    if (!reports.ok()) return void(Fail(ctx, reports.error()));
    bool bad = false;
    for (const auto& r : *reports) {
      std::printf("cluster %s: %llu WAL file(s), %llu other file(s), newest segment %s\n",
                  r.cluster.c_str(), static_cast<unsigned long long>(r.wal_files),
                  static_cast<unsigned long long>(r.other_files),
                  r.newest_segment.empty() ? "-" : r.newest_segment.c_str());
      for (const auto& g : r.gaps) std::printf("  missing %s\n", g.c_str());
      for (const auto& p : r.problems) std::printf("  corrupt %s\n", p.c_str());
      for (const auto& q : r.quarantined) std::printf("  quarantined %s\n", q.c_str());
      if (!r.gaps.empty() || !r.problems.empty() || !r.quarantined.empty()) bad = true;
    }
    if (bad) {
      std::fprintf(stderr, "walferry: verify found missing, corrupt or conflicting (quarantined) files in %s\n",
                   a->root.c_str());
      ctx.exit_code = kExitCorrupt;
    } else {
      std::printf("all files verified, no gaps\n");
    }
  });
}

}  // namespace walferry::cli
