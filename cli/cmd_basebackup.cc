// `walferry basebackup`.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "core/path.h"
#include "core/result.h"
#include "pg/backup_estimate.h"
#include "pg/base_backup.h"
#include "pg/process.h"

namespace walferry::cli {
using namespace pgcmd;

namespace {

struct BasebackupArgs {
  std::string to, name, cluster, tls_dir, config, pgbin;
  bool insecure = false;
  ProgressMode progress = ProgressMode::kAuto;
};

// `walferry send - --name NAME --expect tar ...` with the receiver options.
std::vector<std::string> SenderArgv(const BasebackupArgs& a, const std::vector<std::string>& extras) {
  std::string self = pg::SelfCommand();
  if (auto exe = SelfExePath(); exe.ok()) self = *exe;
  // --expect tar: the receiver stores the stream only as a complete tar
  // with a verified backup_manifest, whatever happens to pg_basebackup.
  std::vector<std::string> send = {self, "send", "-", "--name", a.name, "--expect", "tar"};
  if (!a.to.empty()) send.insert(send.end(), {"--to", a.to});
  if (!a.cluster.empty()) send.insert(send.end(), {"--cluster", a.cluster});
  if (!a.tls_dir.empty()) send.insert(send.end(), {"--tls-dir", a.tls_dir});
  if (!a.config.empty()) send.insert(send.end(), {"--config", a.config});
  if (a.insecure) send.push_back("--insecure-loopback");
  if (ProgressEnabled(a.progress)) {
    // The percentage and ETA come from the server's own figure for its size.
    send.push_back("--progress");
    if (auto est = pg::EstimateBackupSize(extras, a.pgbin); est.ok()) {
      send.insert(send.end(), {"--expected-size", std::to_string(*est)});
    }
  } else {
    send.push_back("--no-progress");
  }
  return send;
}

}  // namespace

void AddBasebackup(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<BasebackupArgs>();
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
    std::vector<std::string> send = SenderArgv(*a, c->remaining());
    // pg/base_backup.h: the stream is committed only when pg_basebackup exited 0.
    IgnoreSigpipe();  // a sender that dies early must give EPIPE, not kill us
    auto send_rc = pg::PipeBaseBackup(bb, send);
    if (!send_rc.ok()) return void(Fail(ctx, send_rc.error()));
    if (*send_rc != 0) {
      ctx.exit_code = *send_rc > 125 ? kExitInternal : *send_rc;
      return;
    }
    std::fprintf(stderr, "walferry: base backup %s is durable on the receiver\n", a->name.c_str());
  });
}

}  // namespace walferry::cli
