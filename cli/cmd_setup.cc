// `walferry setup primary`.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "core/result.h"
#include "pg/config.h"
#include "pg/process.h"
#include "pg/standby.h"
#include "pg/version.h"

namespace walferry::cli {
using namespace pgcmd;

namespace {

struct SetupArgs {
  std::string pgdata, standby_address, archive_command, to, cluster, tls_dir, config, hba_file,
      replication_user = "all", auth_method;
  int max_wal_senders = 10, wal_keep_mb = 512, archive_timeout = 60;
  bool apply = false, insecure = false, archive_module = false;
  std::string agent_socket;
};

// archive_command = walferry push with the options given to setup.
std::string DefaultArchiveCommand(const SetupArgs& a) {
  std::string cmd = pg::ShellQuote(pg::SelfCommand()) + " push %p";
  if (!a.to.empty()) cmd += " --to " + pg::ShellQuote(a.to);
  if (!a.cluster.empty()) cmd += " --cluster " + pg::ShellQuote(a.cluster);
  if (!a.tls_dir.empty()) cmd += " --tls-dir " + pg::ShellQuote(Absolute(a.tls_dir));
  if (!a.config.empty()) cmd += " --config " + pg::ShellQuote(Absolute(a.config));
  if (a.insecure) cmd += " --insecure-loopback";
  if (!a.agent_socket.empty()) cmd += " --agent-socket " + pg::ShellQuote(Absolute(a.agent_socket));
  return cmd;
}

// --archive-module: archive_library instead of archive_command (15+, with the agent).
Status UseArchiveModule(const SetupArgs& a, int major, pg::PrimaryConfig& cfg) {
  if (major < 15) {
    return Error(ErrorCode::kInvalidArgument,
                 "--archive-module needs PostgreSQL 15 or later (this is " + std::to_string(major) + ")");
  }
  if (a.agent_socket.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "--archive-module needs --agent-socket PATH (the module asks the agent)");
  }
  // The module replaces archive_command (16+ refuses both set).
  for (auto& st : cfg.settings) {
    if (st.name == "archive_command") st.value = "";
  }
  cfg.settings.push_back({"archive_library", "walferry_archive", false});
  cfg.settings.push_back({"walferry_archive.socket", Absolute(a.agent_socket), false});
  return Status::Ok();
}

// Prints the settings, writes them with --apply, and says what needs a restart.
Status PrintAndApply(const SetupArgs& a, const std::string& pgdata, int major, const pg::PrimaryConfig& cfg) {
  auto current = pg::CurrentSettings(pgdata);
  std::string hba_file = a.hba_file;
  if (hba_file.empty()) {
    auto it = current.find("hba_file");
    hba_file = it != current.end() ? it->second : pgdata + "/pg_hba.conf";
  }
  auto restart = pg::RestartNeeded(major, current, cfg.settings);
  std::printf("# PostgreSQL %d primary settings (postgresql.auto.conf)\n", major);
  for (const auto& s : cfg.settings) {
    std::printf("%s%s\n", pg::RenderSetting(s)->c_str(), s.needs_restart ? "    # needs restart" : "");
  }
  if (!cfg.hba_line.empty()) std::printf("# %s\n%s\n", hba_file.c_str(), cfg.hba_line.c_str());
  if (a.apply) {
    auto r = pg::ApplyPrimaryConfig(pgdata, cfg.settings, cfg.hba_line, hba_file);
    if (!r.ok()) return r.error();
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
  if (!a.apply) std::printf("(printed only; add --apply to write these settings)\n");
  return Status::Ok();
}

void RunSetupPrimary(const SetupArgs& a, Context& ctx) {
  const std::string pgdata = Absolute(a.pgdata);
  auto major = pg::DetectMajorVersion(pgdata);
  if (!major.ok()) return void(Fail(ctx, major.error()));
  pg::PrimaryOptions o;
  o.major = *major;
  o.max_wal_senders = a.max_wal_senders;
  o.wal_keep_mb = a.wal_keep_mb;
  o.archive_timeout = a.archive_timeout;
  o.standby_address = a.standby_address;
  o.replication_user = a.replication_user;
  o.auth_method = a.auth_method;
  o.archive_command = !a.archive_command.empty() ? a.archive_command : DefaultArchiveCommand(a);
  auto cfg = pg::MakePrimaryConfig(o);
  if (!cfg.ok()) return void(Fail(ctx, cfg.error()));
  if (a.archive_module) {
    if (Status m = UseArchiveModule(a, *major, *cfg); !m.ok()) return void(Fail(ctx, m.error()));
  }
  if (Status p = PrintAndApply(a, pgdata, *major, *cfg); !p.ok()) return void(Fail(ctx, p.error()));
}

}  // namespace

void AddSetup(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<SetupArgs>();
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
  c->callback([a, &ctx] { RunSetupPrimary(*a, ctx); });
}

}  // namespace walferry::cli
