// `walferry get`: restore_command (archive_ops get, prefetch).
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "archive/archive.h"
#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/s3_options.h"
#include "core/names.h"
#include "core/path.h"
#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/process.h"
#include "transport/net.h"

namespace walferry::cli {
namespace {

using namespace pgcmd;

struct GetArgs {
  std::string name, dest, from, cluster, prefetch_dir, config, tls_dir;
  int prefetch = 8;
  int prefetch_max_mb = 256;
  bool worker = false, insecure = false;
  std::uint32_t segment_size = 0;
};

// What restore_command's get needs: the name, where to, the prefetch
// settings and how to start prefetch workers (this binary, by absolute path).
pg::GetOptions GetOptionsFor(const GetArgs& a, const std::string& cluster,
                             const std::vector<std::string>& worker_args) {
  pg::GetOptions o;
  o.name = a.name;
  o.dest = a.dest;
  o.cluster = cluster;
  o.prefetch = a.prefetch;
  o.prefetch_dir = a.prefetch_dir;
  o.prefetch_max_bytes = static_cast<std::uint64_t>(std::max(16, a.prefetch_max_mb)) << 20;
  o.self = a.prefetch > 0 ? pg::SelfCommand() : "";
  if (!o.self.empty() && o.self[0] != '/') {
    auto exe = SelfExePath();
    o.self = exe.ok() ? *exe : "";
  }
  o.worker_args = worker_args;
  return o;
}

void RunGet(const GetArgs& a, Context& ctx) {
  if (a.from.empty()) {
    Fail(ctx, Error(ErrorCode::kInvalidArgument,
                    "get: say where the archive is: --from ROOT (or root = ROOT in the --config file)"));
    return;
  }
  std::unique_ptr<archive::Archive> arch;
  std::unique_ptr<pg::EntrySource> source;
  std::string cluster = a.cluster;
  std::vector<std::string> worker_args = {"--from", a.from};
  if (IsRemote(a.from)) {
    auto ep = transport::ParseEndpoint(a.from);
    if (!ep.ok()) return void(Fail(ctx, ep.error()));
    if (!cluster.empty()) {
      if (Status v = ValidateClusterName(cluster); !v.ok()) return void(Fail(ctx, v.error()));
    }
    source = pg::RemoteSource({*ep, {a.tls_dir, cluster, a.insecure}, cluster});
    if (!a.tls_dir.empty()) worker_args.insert(worker_args.end(), {"--tls-dir", Absolute(a.tls_dir)});
    if (a.insecure) worker_args.push_back("--insecure-loopback");
  } else {
    auto opened = OpenCluster(a.from, a.cluster);
    if (!opened.ok()) return void(Fail(ctx, opened.error()));
    arch = std::move(opened->archive);
    cluster = opened->cluster;
    source = pg::LocalSource(*arch, cluster);
    worker_args = {"--from", IsS3Url(a.from) ? a.from : Absolute(a.from)};
  }
  if (a.worker) {
    // Background prefetch: quiet by design (stdio is /dev/null), and at a
    // lower CPU priority so the segment PostgreSQL waits for comes first.
    (void)::setpriority(PRIO_PROCESS, 0, 10);
    Status st = pg::PrefetchSegments(*source, a.name, a.segment_size, a.prefetch, a.prefetch_dir);
    ctx.exit_code = st.ok() ? kExitOk : ExitCodeFor(st.error().code());
    return;
  }
  auto kind = archive::ClassifyName(a.name);
  if (!kind.ok()) {
    Fail(ctx, kind.error());
    return;
  }
  pg::GetOptions o = GetOptionsFor(a, cluster, worker_args);
  Status st = pg::GetFromArchive(*source, o);
  if (!st.ok()) {
    // Not archived (yet): PostgreSQL asks for such names all the time. Quiet exit 1.
    if (st.error().code() == ErrorCode::kNotFound) {
      ctx.exit_code = kExitFailure;
      return;
    }
    Fail(ctx, st.error());
  }
}

}  // namespace

using namespace pgcmd;

void AddGet(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<GetArgs>();
  auto* c = app.add_subcommand(
      "get", "restore_command: copy a WAL file out of the archive (decompressed, verified)");
  c->footer(
      "Writes NAME from the archive to DEST atomically (temp file, fsync, rename) after\n"
      "decompressing it and verifying its checksums and, for a segment, its page header.\n"
      "A name that is not in the archive exits 1 without a message (PostgreSQL asks for\n"
      "segments that do not exist yet); any other failure prints one line and exits 2..125.\n"
      "Asked for segment N, it fetches the next --prefetch segments in the background into\n"
      "--prefetch-dir (default: DEST's directory/walferry-prefetch), so a standby catching up\n"
      "replays at disk speed.\n\n"
      "--from HOST:PORT reads from a receiver over the network (FETCH; TLS with --tls-dir,\n"
      "the client certificate decides the cluster), verifying every chunk and the whole file.\n\n"
      "postgresql.conf (or recovery.conf before PostgreSQL 12) on the standby:\n"
      "  restore_command = 'walferry get %f %p --from /srv/walferry'\n"
      "  restore_command = 'walferry get %f %p --from archive-host:7420 --tls-dir /etc/walferry/tls'");
  c->add_option("NAME", a->name, "archive name (%f)")->required();
  c->add_option("DEST", a->dest, "destination path (%p)")->required();
  c->add_option("--root,--from", a->from, "archive ROOT directory (or HOST:PORT of a receiver)");
  c->add_option("--cluster", a->cluster, "cluster directory under ROOT (default: the only one, or main)");
  AddConfigOption(c, &a->config);
  c->add_option("--prefetch", a->prefetch, "segments to fetch ahead (0 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  c->add_option("--prefetch-dir", a->prefetch_dir,
                "where prefetched segments wait (default ~/.cache/walferry/prefetch/..., outside PGDATA)");
  c->add_option("--prefetch-max-mb", a->prefetch_max_mb, "read-ahead bound in MiB (default 256)");
  c->add_option("--tls-dir", a->tls_dir, "TLS directory (client certificate) for --from HOST:PORT");
  c->add_flag("--insecure-loopback", a->insecure, "plain TCP to a loopback receiver (tests only)");
  c->add_flag("--prefetch-worker", a->worker)->group("");
  c->add_option("--segment-size", a->segment_size)->group("");
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    RunGet(*a, ctx);
  });
}

}  // namespace walferry::cli
