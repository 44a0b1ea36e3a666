// `walferry restore-base`.
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "archive/archive.h"
#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "core/result.h"
#include "core/stream.h"
#include "pg/archive_ops.h"
#include "pg/config.h"
#include "pg/process.h"
#include "pg/standby.h"
#include "transport/net.h"

namespace walferry::cli {
using namespace pgcmd;

namespace {

struct RestoreBaseArgs {
  std::string name, from, cluster, pgdata, conninfo, restore_command, cleanup_command, trigger,
      slot, config, tls_dir;
  bool force = false, keep_archiving = false, no_cleanup = false, insecure = false;
};

// Where the backup is read from: a receiver (--from HOST:PORT) or a local
// archive (then `arch` holds it, and `cluster` becomes the one found).
Result<std::unique_ptr<pg::EntrySource>> OpenBackupSource(const RestoreBaseArgs& a, bool remote,
                                                          std::unique_ptr<archive::Archive>& arch,
                                                          std::string& cluster) {
  if (remote) {
    WF_ASSIGN(transport::Endpoint ep, transport::ParseEndpoint(a.from));
    return pg::RemoteSource({ep, {a.tls_dir, cluster, a.insecure}, cluster});
  }
  WF_ASSIGN(auto opened, OpenCluster(a.from, a.cluster));
  arch = std::move(opened.archive);
  cluster = opened.cluster;
  if (auto found = arch->Find(cluster, a.name); !found.ok()) {
    if (found.error().code() == ErrorCode::kNotFound) {
      return Error(ErrorCode::kNotFound,
                   "no base backup '" + a.name + "' in " + a.from + " (cluster " + cluster + ")");
    }
    return found.error();
  }
  return pg::LocalSource(*arch, cluster);
}

// The standby's settings: restore_command (and archive_cleanup_command) read
// from where the backup came from.
pg::StandbyOptions StandbyFor(const RestoreBaseArgs& a, const std::string& cluster, bool remote) {
  const std::string self = pg::SelfCommand();
  const std::string root = remote ? a.from : Absolute(a.from);
  std::string cluster_arg = a.cluster.empty() ? "" : " --cluster " + pg::ShellQuote(cluster);
  if (remote && !a.tls_dir.empty()) cluster_arg += " --tls-dir " + pg::ShellQuote(Absolute(a.tls_dir));
  if (remote && a.insecure) cluster_arg += " --insecure-loopback";
  pg::StandbyOptions o;
  o.primary_conninfo = a.conninfo;
  o.restore_command = !a.restore_command.empty()
                          ? a.restore_command
                          : pg::ShellQuote(self) + " get %f %p --from " + pg::ShellQuote(root) + cluster_arg;
  if (!a.no_cleanup && (!remote || !a.cleanup_command.empty())) {
    o.archive_cleanup_command = !a.cleanup_command.empty()
                                    ? a.cleanup_command
                                    : pg::ShellQuote(self) + " cleanup %r --root " + pg::ShellQuote(root) + cluster_arg;
  }
  o.trigger_file = a.trigger;
  o.primary_slot_name = a.slot;
  o.disable_archiving = !a.keep_archiving;
  return o;
}

void RunRestoreBase(const RestoreBaseArgs& a, Context& ctx) {
  const bool remote = IsRemote(a.from);
  std::unique_ptr<archive::Archive> arch;
  std::string cluster = a.cluster;
  auto source = OpenBackupSource(a, remote, arch, cluster);
  if (!source.ok()) return void(Fail(ctx, source.error()));
  const std::string pgdata = Absolute(a.pgdata);
  Status st = pg::PrepareEmptyDataDir(pgdata, a.force);
  if (!st.ok()) return void(Fail(ctx, st.error()));
  IgnoreSigpipe();  // a tar that dies early must give EPIPE, not kill us
  st = pg::UnpackTar(pgdata, [&](ByteSink& sink) { return (*source)->Read(a.name, sink); });
  if (!st.ok()) {
    if (st.error().code() == ErrorCode::kNotFound) {
      return void(Fail(ctx, Error(ErrorCode::kNotFound, "no base backup '" + a.name + "' on " + a.from)));
    }
    return void(Fail(ctx, st.error().Wrap("restore " + a.name)));
  }
  auto w = pg::WriteStandbyConfig(pgdata, StandbyFor(a, cluster, remote));
  if (!w.ok()) return void(Fail(ctx, w.error()));
  std::printf("restored %s into %s (PostgreSQL %d standby: %s)\n", a.name.c_str(), pgdata.c_str(),
              w->major, Join(w->files, ", ").c_str());
  std::printf("start it with: pg_ctl -D %s start\n", pg::ShellQuote(pgdata).c_str());
}

}  // namespace

void AddRestoreBase(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<RestoreBaseArgs>();
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
    RunRestoreBase(*a, ctx);
  });
}

}  // namespace walferry::cli
