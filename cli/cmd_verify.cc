// `walferry verify`: the archive's contents checked.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/compare.h"

namespace walferry::cli {
using namespace pgcmd;

namespace {

// verify --from A --from B: the two archives' differences; 3 when any.
int CompareTwo(const std::string& ra, const std::string& rb, const std::vector<std::string>& clusters) {
  for (const auto* r : {&ra, &rb}) {
    if (IsRemote(*r)) {
      return ReportError(Error(ErrorCode::kUnsupported, "verify --from " + *r +
                                                            ": comparing needs the archive itself (its ROOT or "
                                                            "s3:// URL); a receiver does not list its files"));
    }
  }
  auto a = OpenArchiveRoot(ra);
  if (!a.ok()) return ReportError(a.error());
  auto b = OpenArchiveRoot(rb);
  if (!b.ok()) return ReportError(b.error());
  auto reports = pg::CompareArchives(**a, **b, clusters);
  if (!reports.ok()) return ReportError(reports.error());
  bool bad = false;
  for (const auto& r : *reports) {
    std::printf("cluster %s: %zu file(s) identical on both, %zu only in %s, %zu only in %s, %zu different\n",
                r.cluster.c_str(), r.both, r.only_a.size(), ra.c_str(), r.only_b.size(), rb.c_str(),
                r.different.size());
    for (const auto& n : r.only_a) std::printf("  missing in %s: %s\n", rb.c_str(), n.c_str());
    for (const auto& n : r.only_b) std::printf("  missing in %s: %s\n", ra.c_str(), n.c_str());
    for (const auto& n : r.different) std::printf("  different: %s\n", n.c_str());
    for (const auto& n : r.unreadable) std::printf("  unreadable: %s\n", n.c_str());
    if (!r.clean()) bad = true;
  }
  if (bad) {
    std::fprintf(stderr, "walferry: verify: %s and %s differ\n", ra.c_str(), rb.c_str());
    return kExitCorrupt;
  }
  std::printf("the two archives hold the same files\n");
  return kExitOk;
}

}  // namespace

void AddVerify(CLI::App& app, Context& ctx) {
  struct Args {
    std::vector<std::string> roots;
    std::string config;
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
      "  restore_command = 'walferry get %f %p --from /srv/walferry'\n\n"
      "Given two archives (--from A --from B: two fan-out targets' roots or buckets), compares\n"
      "them instead: names missing on either side and names whose content differs (XXH3-128\n"
      "of the raw content); exits 3 on any difference.\n"
      "  walferry verify --from /srv/walferry --from s3://offsite/wal");
  c->add_option("--root,--from", a->roots, "archive ROOT directory (twice: compare two archives)");
  c->add_option("--cluster", a->clusters, "cluster(s) to check (default: all)");
  AddConfigOption(c, &a->config);
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    if (a->roots.size() > 2) return void(Fail(ctx, Error(ErrorCode::kInvalidArgument, "verify compares two archives at a time")));
    if (a->roots.size() == 2) return void(ctx.exit_code = CompareTwo(a->roots[0], a->roots[1], a->clusters));
    const std::string root = a->roots.empty() ? std::string() : a->roots[0];
    auto arch = OpenArchiveRoot(root);
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
                   root.c_str());
      ctx.exit_code = kExitCorrupt;
    } else {
      std::printf("all files verified, no gaps\n");
    }
  });
}

}  // namespace walferry::cli
