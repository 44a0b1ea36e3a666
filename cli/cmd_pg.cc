// PostgreSQL wrappers: get, cleanup, verify, basebackup, restore-base,
// setup primary, status, promote. The logic lives in pg/; this file parses
// arguments, picks the archive, prints, and maps errors to exit codes.
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
#include "pg/backlog.h"
#include "pg/compare.h"
#include "pg/fanout_status.h"
#include "pg/status.h"
#include "pg/version.h"
#include "transport/net.h"

namespace walferry::cli {
namespace {

// `p` made absolute (as given when the working directory is unreadable).
std::string Absolute(const std::string& p) {
  auto r = AbsolutePath(p);
  return r.ok() ? *r : p;
}

bool IsDirectory(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// A --from value names a remote receiver when it is HOST:PORT and not a directory.
bool IsRemote(const std::string& from) {
  if (from.empty() || from.find('/') != std::string::npos || IsDirectory(from)) return false;
  auto colon = from.rfind(':');
  if (colon == std::string::npos || colon + 1 >= from.size()) return false;
  for (std::size_t i = colon + 1; i < from.size(); ++i) {
    if (from[i] < '0' || from[i] > '9') return false;
  }
  return true;
}

// Opens an existing archive root for reading (never creates a mistyped ROOT).
Result<std::unique_ptr<archive::Archive>> OpenArchiveRoot(const std::string& root) {
  if (IsS3Url(root)) return OpenS3Url(root, S3Flags{}, "", archive::StoreFormat::kZstd);
  if (root.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no archive given: use --root DIR (or --from DIR)");
  }
  if (!IsDirectory(root)) {
    return Error(ErrorCode::kInvalidArgument, "archive root " + root + " is not a directory");
  }
  return archive::Archive::OpenForReading(root);
}

int Fail(Context& ctx, const Error& e) { return ctx.exit_code = ReportError(e); }

// Adds the agent's own STATUS figures when its socket answers.
void AskAgent(pg::ServerStatus& s) {
  if (!s.agent_running) return;
  if (auto st = agent::AskStatus(s.agent_socket, std::chrono::milliseconds(2000)); st.ok()) s.agent = *st;
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// ---------------- get ----------------
struct GetArgs {
  std::string name, dest, from, cluster, prefetch_dir, config, tls_dir;
  int prefetch = 8;
  int prefetch_max_mb = 256;
  bool worker = false, insecure = false;
  std::uint32_t segment_size = 0;
};

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
    auto opened = OpenArchiveRoot(a.from);
    if (!opened.ok()) return void(Fail(ctx, opened.error()));
    arch = std::move(opened).value();
    auto resolved = pg::ResolveCluster(*arch, a.cluster);
    if (!resolved.ok()) return void(Fail(ctx, resolved.error()));
    cluster = *resolved;
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

// ---------------- cleanup ----------------
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

// ---------------- verify ----------------
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

// ---------------- basebackup ----------------
void AddBasebackup(CLI::App& app, Context& ctx) {
  struct Args {
    std::string to, name, cluster, tls_dir, config, pgbin;
    bool insecure = false;
    ProgressMode progress = ProgressMode::kAuto;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "basebackup", "run pg_basebackup -Ft -D - -X fetch and send the tar stream to a receiver");
  c->set_help_flag("--help", "print this help");
  c->allow_extras();
  c->footer(
      "Runs `pg_basebackup -Ft -D - -X fetch [options]` (any option walferry does not know,\n"
      "e.g. -h -p -U -c fast, goes to pg_basebackup) and ships its output as\n"
      "`walferry send - --name NAME` does: compressed in parallel, checksummed, resumable.\n"
      "The standby is then built with `walferry restore-base NAME`. On a terminal a progress\n"
      "line shows bytes, rate and an ETA from the server's size (pg_tablespace_size);\n"
      "--progress / --no-progress force it on or off.\n\n"
      "  walferry basebackup --to standby:7420 --name base-2026-11-25.tar -U postgres -c fast\n"
      "postgresql.conf on the primary (see `walferry setup primary`):\n"
      "  archive_command = 'walferry push %p'");
  c->add_option("--to", a->to, "receiver HOST:PORT");
  c->add_option("--name", a->name, "name of the backup in the archive")->required();
  c->add_option("--cluster", a->cluster, "cluster (selects the client certificate)");
  c->add_option("--tls-dir", a->tls_dir, "TLS directory from `walferry tls init`");
  c->add_flag("--insecure-loopback", a->insecure, "plain TCP to a loopback receiver (tests only)");
  c->add_option("--config", a->config, "walferry config file");
  c->add_option("--pgbin", a->pgbin, "directory of pg_basebackup");
  AddProgressOptions(c, &a->progress);
  c->callback([a, c, &ctx] {
    std::vector<std::string> bb = {pg::FindPgProgram("pg_basebackup", 0, a->pgbin), "-Ft", "-D",
                                   "-", "-X", "fetch"};
    for (const auto& extra : c->remaining()) bb.push_back(extra);
    std::string self = pg::SelfCommand();
    if (auto exe = SelfExePath(); exe.ok()) self = *exe;
    // --expect tar: the receiver stores the stream only as a complete tar
    // with a verified backup_manifest, whatever happens to pg_basebackup.
    std::vector<std::string> send = {self, "send", "-", "--name", a->name, "--expect", "tar"};
    if (!a->to.empty()) send.insert(send.end(), {"--to", a->to});
    if (!a->cluster.empty()) send.insert(send.end(), {"--cluster", a->cluster});
    if (!a->tls_dir.empty()) send.insert(send.end(), {"--tls-dir", a->tls_dir});
    if (!a->config.empty()) send.insert(send.end(), {"--config", a->config});
    if (a->insecure) send.push_back("--insecure-loopback");
    if (ProgressEnabled(a->progress)) {
      // The percentage and ETA come from the server's own figure for its size.
      send.push_back("--progress");
      if (auto est = pg::EstimateBackupSize(c->remaining(), a->pgbin); est.ok()) {
        send.insert(send.end(), {"--expected-size", std::to_string(*est)});
      }
    } else {
      send.push_back("--no-progress");
    }
    auto sender = pg::Child::Spawn(send, pg::Child::PipeEnd::kToChild);
    if (!sender.ok()) return void(Fail(ctx, sender.error()));
    auto producer = pg::Child::Spawn(bb, pg::Child::PipeEnd::kFromChild);
    if (!producer.ok()) return void(Fail(ctx, producer.error()));
    // Relay pg_basebackup's stdout into the sender, and end the sender's input
    // (which makes it commit) only once pg_basebackup has exited 0: a failed
    // backup must never be placed under its final name.
    IgnoreSigpipe();  // a sender that dies early must give EPIPE, not kill us
    Status relay = pg::Relay(producer->fd(), sender->fd());
    auto bb_rc = producer->Wait();
    if (!bb_rc.ok()) return void(Fail(ctx, bb_rc.error()));
    if (*bb_rc != 0 || !relay.ok()) {
      sender->Kill();  // before EOF reaches it: nothing is committed
      if (*bb_rc != 0) {
        return void(Fail(ctx, Error(ErrorCode::kIo, "pg_basebackup failed (exit " +
                                                        std::to_string(*bb_rc) +
                                                        "); nothing was stored")));
      }
      return void(Fail(ctx, relay.error().Wrap("sending the base backup")));
    }
    auto send_rc = sender->Wait();
    if (!send_rc.ok()) return void(Fail(ctx, send_rc.error()));
    if (*send_rc != 0) {
      ctx.exit_code = *send_rc > 125 ? kExitInternal : *send_rc;
      return;
    }
    std::fprintf(stderr, "walferry: base backup %s is durable on the receiver\n", a->name.c_str());
  });
}

// ---------------- restore-base ----------------
void AddRestoreBase(CLI::App& app, Context& ctx) {
  struct Args {
    std::string name, from, cluster, pgdata, conninfo, restore_command, cleanup_command, trigger,
        slot, config, tls_dir;
    bool force = false, keep_archiving = false, no_cleanup = false, insecure = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "restore-base", "unpack a stored base backup into an empty data directory and make it a standby");
  c->footer(
      "Decompresses and verifies the stored tar NAME, unpacks it into the EMPTY data directory\n"
      "--pgdata (mode 0700; a non-empty one is refused unless --force, which replaces its\n"
      "contents), and writes the standby configuration for the detected PostgreSQL version:\n"
      "10/11 recovery.conf (standby_mode, primary_conninfo, restore_command, trigger_file);\n"
      "12+ standby.signal plus the settings in postgresql.auto.conf. Archiving is switched\n"
      "off on the standby (archive_mode = off) unless --keep-archiving. --from HOST:PORT reads\n"
      "the backup from a receiver over the network (then restore_command does too, and no\n"
      "archive_cleanup_command is set).\n\n"
      "  walferry restore-base base.tar --from /srv/walferry --pgdata /var/lib/postgresql/15/main \\\n"
      "      --primary-conninfo 'host=192.168.0.5 user=replicator'\n"
      "writes these postgresql.conf settings (into postgresql.auto.conf on 12+, recovery.conf\n"
      "on 10/11):\n"
      "  restore_command = 'walferry get %f %p --from /srv/walferry'\n"
      "  archive_cleanup_command = 'walferry cleanup %r --root /srv/walferry'");
  c->add_option("NAME", a->name, "name of the stored base backup")->required();
  c->add_option("--root,--from", a->from, "archive ROOT directory");
  c->add_option("--cluster", a->cluster, "cluster directory under ROOT (default: the only one, or main)");
  AddConfigOption(c, &a->config);
  c->add_option("--pgdata,-D", a->pgdata, "data directory to create")->required();
  c->add_option("--primary-conninfo", a->conninfo, "libpq connection string to the primary (omit for an archive-only standby)");
  c->add_option("--restore-command", a->restore_command, "restore_command (default: walferry get %f %p --from ROOT)");
  c->add_option("--archive-cleanup-command", a->cleanup_command, "archive_cleanup_command (default: walferry cleanup %r --root ROOT)");
  c->add_flag("--no-cleanup", a->no_cleanup, "do not set archive_cleanup_command");
  c->add_option("--tls-dir", a->tls_dir, "TLS directory (client certificate) for --from HOST:PORT");
  c->add_flag("--insecure-loopback", a->insecure, "plain TCP to a loopback receiver (tests only)");
  c->add_option("--trigger-file", a->trigger, "trigger_file (10/11) / promote_trigger_file (12-15)");
  c->add_option("--slot", a->slot, "primary_slot_name");
  c->add_flag("--force", a->force, "replace the contents of a non-empty data directory");
  c->add_flag("--keep-archiving", a->keep_archiving, "keep the primary's archive settings");
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    const bool remote = IsRemote(a->from);
    std::unique_ptr<archive::Archive> arch;
    std::unique_ptr<pg::EntrySource> source;
    std::string cluster = a->cluster;
    if (remote) {
      auto ep = transport::ParseEndpoint(a->from);
      if (!ep.ok()) return void(Fail(ctx, ep.error()));
      source = pg::RemoteSource({*ep, {a->tls_dir, cluster, a->insecure}, cluster});
    } else {
      auto opened = OpenArchiveRoot(a->from);
      if (!opened.ok()) return void(Fail(ctx, opened.error()));
      arch = std::move(opened).value();
      auto resolved = pg::ResolveCluster(*arch, a->cluster);
      if (!resolved.ok()) return void(Fail(ctx, resolved.error()));
      cluster = *resolved;
      if (auto found = arch->Find(cluster, a->name); !found.ok()) {
        if (found.error().code() == ErrorCode::kNotFound) {
          return void(Fail(ctx, Error(ErrorCode::kNotFound, "no base backup '" + a->name + "' in " +
                                                                a->from + " (cluster " + cluster + ")")));
        }
        return void(Fail(ctx, found.error()));
      }
      source = pg::LocalSource(*arch, cluster);
    }
    const std::string pgdata = Absolute(a->pgdata);
    Status st = pg::PrepareEmptyDataDir(pgdata, a->force);
    if (!st.ok()) return void(Fail(ctx, st.error()));
    IgnoreSigpipe();  // a tar that dies early must give EPIPE, not kill us
    st = pg::UnpackTar(pgdata, [&](ByteSink& sink) { return source->Read(a->name, sink); });
    if (!st.ok()) {
      if (st.error().code() == ErrorCode::kNotFound) {
        return void(Fail(ctx, Error(ErrorCode::kNotFound, "no base backup '" + a->name + "' on " + a->from)));
      }
      return void(Fail(ctx, st.error().Wrap("restore " + a->name)));
    }
    const std::string self = pg::SelfCommand();
    const std::string root = remote ? a->from : Absolute(a->from);
    std::string cluster_arg = a->cluster.empty() ? "" : " --cluster " + pg::ShellQuote(cluster);
    if (remote && !a->tls_dir.empty()) cluster_arg += " --tls-dir " + pg::ShellQuote(Absolute(a->tls_dir));
    if (remote && a->insecure) cluster_arg += " --insecure-loopback";
    pg::StandbyOptions o;
    o.primary_conninfo = a->conninfo;
    o.restore_command = !a->restore_command.empty()
                            ? a->restore_command
                            : pg::ShellQuote(self) + " get %f %p --from " + pg::ShellQuote(root) + cluster_arg;
    if (!a->no_cleanup && (!remote || !a->cleanup_command.empty())) {
      o.archive_cleanup_command = !a->cleanup_command.empty()
                                      ? a->cleanup_command
                                      : pg::ShellQuote(self) + " cleanup %r --root " +
                                            pg::ShellQuote(root) + cluster_arg;
    }
    o.trigger_file = a->trigger;
    o.primary_slot_name = a->slot;
    o.disable_archiving = !a->keep_archiving;
    auto w = pg::WriteStandbyConfig(pgdata, o);
    if (!w.ok()) return void(Fail(ctx, w.error()));
    std::printf("restored %s into %s (PostgreSQL %d standby: %s)\n", a->name.c_str(), pgdata.c_str(),
                w->major, Join(w->files, ", ").c_str());
    std::printf("start it with: pg_ctl -D %s start\n", pg::ShellQuote(pgdata).c_str());
  });
}

// ---------------- setup primary ----------------
void AddSetup(CLI::App& app, Context& ctx) {
  struct Args {
    std::string pgdata, standby_address, archive_command, to, cluster, tls_dir, config, hba_file,
        replication_user = "all", auth_method;
    int max_wal_senders = 10, wal_keep_mb = 512, archive_timeout = 60;
    bool apply = false, insecure = false, archive_module = false;
    std::string agent_socket;
  };
  auto a = std::make_shared<Args>();
  auto* setup = app.add_subcommand("setup", "configure PostgreSQL for walferry");
  setup->require_subcommand(1);
  auto* c = setup->add_subcommand(
      "primary", "print (or --apply) the primary's replication and archiving settings");
  c->footer(
      "Prints, or with --apply writes (postgresql.auto.conf, as ALTER SYSTEM would, and a\n"
      "replication line in pg_hba.conf; a timestamped backup copy of each changed file is\n"
      "kept), the settings the primary needs, right for its version: wal_level = replica,\n"
      "max_wal_senders, wal_keep_segments (<= 12) or wal_keep_size (>= 13), archive_mode = on,\n"
      "archive_command, archive_timeout. Says which changes need a restart.\n\n"
      "  walferry setup primary --pgdata /var/lib/postgresql/15/main --standby-address 192.168.0.10 \\\n"
      "      --to 192.168.0.10:7420 --apply\n"
      "postgresql.conf result:\n"
      "  archive_command = 'walferry push %p --to 192.168.0.10:7420'");
  c->add_option("--pgdata,-D", a->pgdata, "the primary's data directory")->required();
  c->add_option("--standby-address", a->standby_address, "standby address for pg_hba.conf (IP, CIDR or host name)");
  c->add_flag("--apply", a->apply, "write the settings (default: print them)");
  c->add_option("--archive-command", a->archive_command, "archive_command (default: walferry push %p ...)");
  c->add_option("--to", a->to, "receiver HOST:PORT for the default archive_command");
  c->add_option("--cluster", a->cluster, "cluster for the default archive_command");
  c->add_option("--tls-dir", a->tls_dir, "TLS directory for the default archive_command");
  c->add_option("--config", a->config, "walferry config file for the default archive_command");
  c->add_flag("--insecure-loopback", a->insecure, "plain TCP in the default archive_command (tests only)");
  c->add_option("--agent-socket", a->agent_socket,
                "socket of a `walferry agent` (docs/agent.md): push asks it first");
  c->add_flag("--archive-module", a->archive_module,
              "15+: archive_library = 'walferry_archive' asking the agent (needs --agent-socket) "
              "instead of archive_command");
  c->add_option("--max-wal-senders", a->max_wal_senders)->capture_default_str();
  c->add_option("--wal-keep-mb", a->wal_keep_mb, "WAL kept for standbys, MB")->capture_default_str();
  c->add_option("--archive-timeout", a->archive_timeout, "seconds")->capture_default_str();
  c->add_option("--replication-user", a->replication_user, "pg_hba.conf user column")->capture_default_str();
  c->add_option("--auth-method", a->auth_method, "pg_hba.conf method (default scram-sha-256 on 14+, md5 before)");
  c->add_option("--hba-file", a->hba_file, "pg_hba.conf path (default: hba_file setting or PGDATA/pg_hba.conf)");
  c->callback([a, &ctx] {
    const std::string pgdata = Absolute(a->pgdata);
    auto major = pg::DetectMajorVersion(pgdata);
    if (!major.ok()) return void(Fail(ctx, major.error()));
    pg::PrimaryOptions o;
    o.major = *major;
    o.max_wal_senders = a->max_wal_senders;
    o.wal_keep_mb = a->wal_keep_mb;
    o.archive_timeout = a->archive_timeout;
    o.standby_address = a->standby_address;
    o.replication_user = a->replication_user;
    o.auth_method = a->auth_method;
    if (!a->archive_command.empty()) {
      o.archive_command = a->archive_command;
    } else {
      std::string cmd = pg::ShellQuote(pg::SelfCommand()) + " push %p";
      if (!a->to.empty()) cmd += " --to " + pg::ShellQuote(a->to);
      if (!a->cluster.empty()) cmd += " --cluster " + pg::ShellQuote(a->cluster);
      if (!a->tls_dir.empty()) cmd += " --tls-dir " + pg::ShellQuote(Absolute(a->tls_dir));
      if (!a->config.empty()) cmd += " --config " + pg::ShellQuote(Absolute(a->config));
      if (a->insecure) cmd += " --insecure-loopback";
      if (!a->agent_socket.empty()) cmd += " --agent-socket " + pg::ShellQuote(Absolute(a->agent_socket));
      o.archive_command = cmd;
    }
    auto cfg = pg::MakePrimaryConfig(o);
    if (!cfg.ok()) return void(Fail(ctx, cfg.error()));
    if (a->archive_module) {
      if (*major < 15) {
        return void(Fail(ctx, Error(ErrorCode::kInvalidArgument,
                                    "--archive-module needs PostgreSQL 15 or later (this is " +
                                        std::to_string(*major) + ")")));
      }
      if (a->agent_socket.empty()) {
        return void(Fail(ctx, Error(ErrorCode::kInvalidArgument,
                                    "--archive-module needs --agent-socket PATH (the module asks the agent)")));
      }
      // The module replaces archive_command (16+ refuses both set).
      for (auto& st : cfg->settings) {
        if (st.name == "archive_command") st.value = "";
      }
      cfg->settings.push_back({"archive_library", "walferry_archive", false});
      cfg->settings.push_back({"walferry_archive.socket", Absolute(a->agent_socket), false});
    }
    auto current = pg::CurrentSettings(pgdata);
    std::string hba_file = a->hba_file;
    if (hba_file.empty()) {
      auto it = current.find("hba_file");
      hba_file = it != current.end() ? it->second : pgdata + "/pg_hba.conf";
    }
    auto restart = pg::RestartNeeded(*major, current, cfg->settings);
    std::printf("# PostgreSQL %d primary settings (postgresql.auto.conf)\n", *major);
    for (const auto& s : cfg->settings) {
      std::printf("%s%s\n", pg::RenderSetting(s)->c_str(), s.needs_restart ? "    # needs restart" : "");
    }
    if (!cfg->hba_line.empty()) std::printf("# %s\n%s\n", hba_file.c_str(), cfg->hba_line.c_str());
    if (a->apply) {
      auto r = pg::ApplyPrimaryConfig(pgdata, cfg->settings, cfg->hba_line, hba_file);
      if (!r.ok()) return void(Fail(ctx, r.error()));
      for (const auto& f : r->changed) std::printf("wrote %s\n", f.c_str());
      for (const auto& f : r->backups) std::printf("backup %s\n", f.c_str());
      if (r->changed.empty()) std::printf("nothing to change\n");
    }
    if (!restart.empty()) {
      std::printf("restart needed for: %s (pg_ctl -D %s restart)\n", Join(restart, ", ").c_str(),
                  pg::ShellQuote(pgdata).c_str());
    } else {
      std::printf("no restart needed; a reload applies the rest (pg_ctl -D %s reload)\n",
                  pg::ShellQuote(pgdata).c_str());
    }
    if (!a->apply) std::printf("(printed only; add --apply to write these settings)\n");
  });
}

// ---------------- status ----------------
void AddStatus(CLI::App& app, Context& ctx) {
  struct Args {
    bool json = false, check = false, prometheus = false;
    std::string root, config;
    std::vector<std::string> clusters;
    pg::ConnOptions conn;
    pg::Thresholds limits;
    std::string backlog_dir;         // fan-out backlog (several --to): per-target lag
    double max_target_lag_s = 900;   // --check: oldest file a target may lack
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "status", "replication and archiving state of a server, and of the archive");
  c->set_help_flag("--help", "print this help");
  c->footer(
      "On the primary: pg_stat_replication (state, lag in bytes), pg_stat_archiver (last\n"
      "archived, failures) and the .ready files waiting in pg_wal/archive_status. On a\n"
      "standby: received/replayed positions. With --root: the archive's newest segment per\n"
      "cluster, any gap, size on disk and last write. Connection options as psql takes them\n"
      "(-h -p -U -d). The primary's backlog (count, bytes and age of .ready files) and its\n"
      "WAL written/archived rates over the last 5 minutes come from pg_wal/archive_status\n"
      "(--pgdata, or the server's data_directory when readable); the last failure's reason\n"
      "from walferry push's record; the agent from its socket ($WALFERRY_AGENT_SOCKET).\n"
      "--check prints one line and exits 1 past --max-backlog, --max-oldest-age or\n"
      "--max-since-success, or while archiving fails (for cron and Nagios).\n\n"
      "  walferry status --pgdata /var/lib/postgresql/15/main --json\n"
      "  walferry status --pgdata /var/lib/postgresql/15/main --check --max-backlog 8\n"
      "for a primary whose postgresql.conf has:\n"
      "  archive_command = 'walferry push %p'");
  c->add_flag("--json", a->json, "machine-readable output");
  c->add_option("--pgdata,-D", a->conn.pgdata, "data directory (port, socket and .ready count)");
  c->add_option("-h,--host", a->conn.host, "server host or socket directory");
  c->add_option("-p,--port", a->conn.port, "server port");
  c->add_option("-U,--username", a->conn.user, "user name");
  c->add_option("-d,--dbname", a->conn.dbname, "database")->capture_default_str();
  c->add_option("--pgbin", a->conn.pgbin, "directory of psql");
  c->add_option("--root", a->root, "archive ROOT directory (receiver side)");
  c->add_option("--cluster", a->clusters, "cluster(s) of the archive (default: all)");
  AddConfigOption(c, &a->config);
  c->add_option("--agent-socket", a->conn.agent_socket,
                "the agent's socket (default: from archive_command, walferry_archive.socket, "
                "$WALFERRY_AGENT_SOCKET, /run/walferry/agent.sock)");
  c->add_option("--backlog-dir", a->backlog_dir,
                "the fan-out backlog of push with several --to: what each target lacks (docs/fanout.md)");
  c->add_option("--max-target-lag", a->max_target_lag_s,
                "--check with --backlog-dir: seconds a target may lack a file (-1 = any)")
      ->capture_default_str();
  c->add_flag("--prometheus", a->prometheus, "the primary's figures as Prometheus text (node_exporter textfile)");
  c->add_flag("--check", a->check, "one line for monitoring (cron, Nagios); exit 1 past a threshold");
  c->add_option("--max-backlog", a->limits.max_backlog, "--check: .ready segments allowed (-1 = any)")
      ->capture_default_str();
  c->add_option("--max-oldest-age", a->limits.max_oldest_age_s, "--check: seconds the oldest .ready may wait")
      ->capture_default_str();
  c->add_option("--max-since-success", a->limits.max_since_success_s,
                "--check: seconds since the last archived segment while a backlog waits")
      ->capture_default_str();
  c->callback([a, c, &ctx] {
    if (Status st = ApplyConfig(*c, a->config); !st.ok()) return void(Fail(ctx, st.error()));
    std::optional<std::vector<pg::TargetReport>> targets;
    if (!a->backlog_dir.empty()) {
      // Read only: status may run as another user than push (never create
      // or rewrite what push owns).
      auto b = pg::Backlog::OpenForReading(a->backlog_dir);
      if (!b.ok() && b.error().code() == ErrorCode::kNotFound) {
        targets.emplace();  // no push has missed anything yet
      } else {
        auto r = b.ok() ? pg::FanoutReports(*b, static_cast<double>(::time(nullptr)))
                        : Result<std::vector<pg::TargetReport>>(b.error());
        if (!r.ok()) return void(Fail(ctx, r.error().Wrap("backlog")));
        targets = std::move(r).value();
      }
    }
    const bool no_server = a->conn.pgdata.empty() && a->conn.host.empty() && a->conn.port.empty();
    if (targets && no_server && a->root.empty()) {
      // The fan-out's targets alone.
      if (a->prometheus) {
        std::fputs(pg::FanoutMetrics(*targets).c_str(), stdout);
      } else if (a->check) {
        auto breaches = pg::FanoutBreaches(*targets, a->max_target_lag_s);
        std::size_t lacking = 0;
        for (const auto& t : *targets) lacking += t.lacking;
        std::string figures = std::to_string(targets->size()) + " target(s), " + std::to_string(lacking) +
                              " file(s) lacking";
        if (breaches.empty()) {
          std::printf("ARCHIVE OK - %s\n", figures.c_str());
        } else {
          std::printf("ARCHIVE CRITICAL - %s | %s\n", Join(breaches, "; ").c_str(), figures.c_str());
          ctx.exit_code = kExitFailure;
        }
      } else if (a->json) {
        std::printf("{\"targets\":%s}\n", pg::FanoutJson(*targets).c_str());
      } else {
        std::fputs(pg::FanoutText(*targets).c_str(), stdout);
      }
      return;
    }
    if (a->check || a->prometheus) {
      if (!a->conn.pgdata.empty()) a->conn.pgdata = Absolute(a->conn.pgdata);
      auto s = pg::QueryServerStatus(a->conn);
      if (!s.ok() && a->prometheus) return void(Fail(ctx, s.error()));
      if (s.ok()) AskAgent(*s);
      if (a->prometheus) {
        std::fputs(ServerStatusMetrics(*s).c_str(), stdout);
        if (targets) std::fputs(pg::FanoutMetrics(*targets).c_str(), stdout);
        return;
      }
      if (!s.ok()) {
        std::printf("ARCHIVE CRITICAL - cannot ask PostgreSQL: %s\n", s.error().message().c_str());
        ctx.exit_code = kExitFailure;
        return;
      }
      auto breaches = pg::CheckThresholds(*s, a->limits);
      if (targets) {
        for (auto& b : pg::FanoutBreaches(*targets, a->max_target_lag_s)) breaches.push_back(std::move(b));
      }
      std::fputs(pg::CheckSummary(*s, breaches).c_str(), stdout);
      ctx.exit_code = breaches.empty() ? kExitOk : kExitFailure;
      return;
    }
    std::optional<pg::ServerStatus> server;
    std::vector<pg::ClusterReport> reports;
    std::vector<pg::ArchiveUsage> usage;
    bool have_archive = false;
    std::optional<Error> failure;
    const bool want_server = !a->conn.pgdata.empty() || !a->conn.host.empty() ||
                             !a->conn.port.empty() || a->root.empty();
    if (want_server) {
      if (!a->conn.pgdata.empty()) a->conn.pgdata = Absolute(a->conn.pgdata);
      auto s = pg::QueryServerStatus(a->conn);
      if (s.ok()) {
        AskAgent(*s);
        server = std::move(s).value();
      } else {
        failure = s.error();
      }
    }
    if (!a->root.empty()) {
      auto arch = OpenArchiveRoot(a->root);
      if (!arch.ok()) {
        failure = arch.error();
      } else {
        auto r = pg::InspectArchive(**arch, a->clusters, /*full=*/false);
        if (r.ok()) {
          reports = std::move(r).value();
          have_archive = true;
          const double now = static_cast<double>(::time(nullptr));
          for (const auto& rep : reports) usage.push_back(pg::ClusterUsage(a->root, rep.cluster, now));
        } else {
          failure = r.error();
        }
      }
    }
    const bool colour = ::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr;
    std::string out = a->json ? pg::StatusJson(server, have_archive ? &reports : nullptr, &usage)
                              : pg::StatusText(server, have_archive ? &reports : nullptr, &usage, colour);
    if (targets) {
      if (a->json) {
        // One object: the targets go in as one more member.
        auto close = out.rfind('}');
        if (close != std::string::npos) out = out.substr(0, close) + ",\"targets\":" + pg::FanoutJson(*targets) + "}\n";
      } else {
        out += pg::FanoutText(*targets);
      }
    }
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
    if (failure) Fail(ctx, *failure);
  });
}

// ---------------- promote ----------------
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

}  // namespace

void AddPgCommands(CLI::App& app, Context& ctx) {
  AddGet(app, ctx);
  AddCleanup(app, ctx);
  AddVerify(app, ctx);
  AddBasebackup(app, ctx);
  AddRestoreBase(app, ctx);
  AddSetup(app, ctx);
  AddStatus(app, ctx);
  AddPromote(app, ctx);
}

}  // namespace walferry::cli
