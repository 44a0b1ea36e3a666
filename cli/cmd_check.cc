// `walferry check`: the whole archiving chain of a primary verified in one
// command, as `pgbackrest check` and `barman check` do: the settings
// PostgreSQL is really running with, the receiver reachable, the certificate's
// remaining validity, then a forced WAL switch whose segment must become
// durable in the archive (PostgreSQL says archived, and the receiver hands it
// back with every checksum verified). One line per check, ✓ or ✗ with what to
// do; exit 1 when any check fails; --json for machines.
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/cert_expiry.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "cli/pg_conn_options.h"
#include "core/stream.h"
#include "pg/archive_ops.h"
#include "pg/psql.h"
#include "pg/status.h"
#include "pg/version.h"
#include "transport/net.h"

namespace walferry::cli {
namespace {

struct CheckArgs {
  pg::ConnOptions conn;
  std::string to, tls_dir, cluster, config;
  bool insecure = false, json = false;
  int timeout = 60;
  int cert_min_days = 14;
};

struct Line {
  std::string id;      // stable key for --json
  bool ok = false;
  std::string text;    // what was found
  std::string hint;    // what to do (failures)
};

class Report {
 public:
  void Ok(std::string id, std::string text) { lines_.push_back({std::move(id), true, std::move(text), ""}); }
  void Bad(std::string id, std::string text, std::string hint) {
    lines_.push_back({std::move(id), false, std::move(text), std::move(hint)});
  }
  bool all_ok() const {
    for (const auto& l : lines_) {
      if (!l.ok) return false;
    }
    return true;
  }
  std::string Text(bool colour) const {
    std::string t;
    int bad = 0;
    for (const auto& l : lines_) {
      if (!l.ok) ++bad;
      const char* mark = l.ok ? (colour ? "\033[32m✓\033[0m" : "✓") : (colour ? "\033[31m✗\033[0m" : "✗");
      t += std::string(mark) + " " + l.text + "\n";
      if (!l.ok && !l.hint.empty()) t += "    → " + l.hint + "\n";
    }
    t += bad == 0 ? "all " + std::to_string(lines_.size()) + " checks passed\n"
                  : std::to_string(bad) + " of " + std::to_string(lines_.size()) + " checks failed\n";
    return t;
  }
  std::string Json() const {
    std::string j = "{\"ok\":" + std::string(all_ok() ? "true" : "false") + ",\"checks\":[";
    for (std::size_t i = 0; i < lines_.size(); ++i) {
      const auto& l = lines_[i];
      j += (i ? "," : "") + std::string("{\"check\":") + pg::JsonString(l.id) +
           ",\"ok\":" + (l.ok ? "true" : "false") + ",\"detail\":" + pg::JsonString(l.text) +
           ",\"hint\":" + pg::JsonString(l.hint) + "}";
    }
    return j + "]}\n";
  }

 private:
  std::vector<Line> lines_;
};

// The receiver options of a `walferry push` archive_command, for when check
// is not told them: --to, --tls-dir, --cluster, --config, --insecure-loopback.
void FromArchiveCommand(const std::string& command, CheckArgs& a) {
  std::vector<std::string> words;
  std::string cur;
  char quote = 0;
  for (char ch : command) {
    if (quote) {
      if (ch == quote) quote = 0; else cur += ch;
    } else if (ch == '\'' || ch == '"') {
      quote = ch;
    } else if (ch == ' ' || ch == '\t') {
      if (!cur.empty()) words.push_back(std::move(cur)), cur.clear();
    } else {
      cur += ch;
    }
  }
  if (!cur.empty()) words.push_back(cur);
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    auto take = [&](const char* opt, std::string& dst) {
      std::string o = opt;
      if (w == o && i + 1 < words.size()) {
        if (dst.empty()) dst = words[i + 1];
        return true;
      }
      if (w.rfind(o + "=", 0) == 0) {
        if (dst.empty()) dst = w.substr(o.size() + 1);
        return true;
      }
      return false;
    };
    if (take("--to", a.to) || take("--tls-dir", a.tls_dir) || take("--cluster", a.cluster) ||
        take("--config", a.config)) {
      continue;
    }
    if (w == "--insecure-loopback") a.insecure = true;
  }
}

// Applies a config file's receiver keys that neither the command line nor the
// archive_command gave.
void FromConfigFile(CheckArgs& a) {
  std::string path = ConfigPath(a.config);
  if (path.empty()) return;
  auto cfg = Config::Load(path);
  if (!cfg.ok()) return;
  auto fill = [&](const char* key, std::string& dst) {
    if (const std::string* v = cfg->Find(key); v && dst.empty()) dst = *v;
  };
  fill("to", a.to);
  fill("tls-dir", a.tls_dir);
  fill("cluster", a.cluster);
}

class CountingSink : public ByteSink {
 public:
  Status Write(std::span<const std::byte> data) override {
    bytes_ += data.size();
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  std::uint64_t bytes() const { return bytes_; }

 private:
  std::uint64_t bytes_ = 0;
};

std::string Mib(std::uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / 1048576.0);
  return buf;
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
  return buf;
}

// The client certificate `Connect` will use: client-<cluster>.crt, or the only one.
std::string ClientCertPath(const std::string& dir, const std::string& cluster) {
  if (!cluster.empty()) return dir + "/client-" + cluster + ".crt";
  std::vector<std::string> found;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 11 && n.rfind("client-", 0) == 0 && n.ends_with(".crt")) found.push_back(n);
    }
    ::closedir(d);
  }
  return found.size() == 1 ? dir + "/" + found[0] : "";
}

void CheckCertificates(const CheckArgs& a, Report& r) {
  std::vector<std::pair<std::string, std::string>> certs;  // label, path
  std::string client = ClientCertPath(a.tls_dir, a.cluster);
  if (client.empty()) {
    r.Bad("certificate", "no single client certificate in " + a.tls_dir,
          "give --cluster NAME, or make one: walferry tls init " + a.tls_dir + " --cluster NAME");
    return;
  }
  certs.push_back({"client certificate " + BaseName(client), client});
  certs.push_back({"CA certificate ca.crt", a.tls_dir + "/ca.crt"});
  for (const auto& [label, path] : certs) {
    auto v = ReadCertValidity(path);
    if (!v.ok()) {
      r.Bad("certificate", label + ": " + v.error().message(),
            "make the TLS files with: walferry tls init DIR --cluster NAME");
    } else if (v->not_yet_valid) {
      r.Bad("certificate", label + " is not valid yet", "check this machine's clock");
    } else if (v->days_left < 0) {
      r.Bad("certificate", label + " expired on " + v->not_after,
            "make new TLS files (walferry tls init --force) and copy them to both sides");
    } else if (v->days_left < a.cert_min_days) {
      r.Bad("certificate", label + " expires in " + std::to_string(v->days_left) + " days (" + v->not_after + ")",
            "renew it before it expires: walferry tls init --force, then copy to both sides");
    } else {
      r.Ok("certificate", label + " valid for " + std::to_string(v->days_left) + " more days (until " +
                              v->not_after + ")");
    }
  }
}

// What the settings check learnt of the server, for the later checks.
struct ServerFacts {
  bool ok = false, primary = false, archiving_on = false;
  std::string archive_command;
};

// archive_library or archive_command: walferry's?
void CheckArchiving(const std::string& library, const std::string& archive_command, Report& r) {
  if (!library.empty()) {
    if (library.find("walferry") != std::string::npos) {
      r.Ok("archiving", "archive_library = '" + library + "'");
    } else {
      r.Bad("archiving", "archive_library = '" + library + "' is not walferry's",
            "set archive_library = 'walferry_archive', or unset it and use archive_command");
    }
  } else if (archive_command.find("walferry") != std::string::npos &&
             archive_command.find(" push") != std::string::npos && archive_command.find("%p") != std::string::npos) {
    r.Ok("archiving", "archive_command = '" + archive_command + "'");
  } else {
    r.Bad("archiving",
          "archive_command = '" + archive_command + "'" +
              (archive_command.empty() || archive_command == "(disabled)" ? " (not set)" : " is not walferry push %p"),
          "set archive_command = 'walferry push %p --to HOST:PORT --tls-dir DIR' "
          "(walferry setup primary --to HOST:PORT --tls-dir DIR --apply), then reload");
  }
}

// The settings PostgreSQL runs with (one query).
ServerFacts CheckSettings(pg::Psql& psql, Report& r) {
  ServerFacts f;
  auto head = psql.Query(
      "SELECT current_setting('server_version_num'), pg_is_in_recovery(), current_setting('wal_level'), "
      "current_setting('archive_mode'), current_setting('archive_command'), "
      "coalesce(current_setting('archive_library', true), ''), current_setting('max_wal_senders'), "
      "coalesce((SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart), '')");
  if (!head.ok() || head->empty() || (*head)[0].size() < 8) {
    r.Bad("server", "cannot ask PostgreSQL (" + psql.target() + "): " +
                        (head.ok() ? std::string("unexpected answer") : head.error().message()),
          "is it running? give --pgdata DIR, or -h/-p/-U as for psql");
    return f;
  }
  const auto& v = (*head)[0];
  f.ok = true;
  auto major = pg::MajorFromVersionNum(v[0]);
  f.primary = v[1] != "t";
  std::string who = "PostgreSQL " + (major.ok() ? std::to_string(*major) : v[0]) + " " +
                    (f.primary ? "primary" : "standby") + " (" + psql.target() + ")";
  if (f.primary) {
    r.Ok("server", who);
  } else {
    r.Bad("server", who + " is in recovery", "run walferry check on the primary");
  }
  if (v[2] == "replica" || v[2] == "logical") {
    r.Ok("wal_level", "wal_level = " + v[2]);
  } else {
    r.Bad("wal_level", "wal_level = " + v[2] + " (WAL cannot feed a standby)",
          "set wal_level = replica (walferry setup primary --apply) and restart PostgreSQL");
  }
  f.archiving_on = v[3] == "on" || v[3] == "always";
  if (f.archiving_on) {
    r.Ok("archive_mode", "archive_mode = " + v[3]);
  } else {
    r.Bad("archive_mode", "archive_mode = " + v[3] + " (nothing is archived)",
          "set archive_mode = on (walferry setup primary --apply) and restart PostgreSQL");
  }
  f.archive_command = v[4];
  CheckArchiving(v[5], f.archive_command, r);
  int senders = std::atoi(v[6].c_str());
  if (senders > 0) {
    r.Ok("max_wal_senders", "max_wal_senders = " + v[6]);
  } else {
    r.Bad("max_wal_senders", "max_wal_senders = " + v[6] + " (no standby can stream)",
          "set max_wal_senders = 10 (walferry setup primary --apply) and restart PostgreSQL");
  }
  if (v[7].empty()) {
    r.Ok("restart", "no changed setting waits for a restart");
  } else {
    r.Bad("restart", "changed settings wait for a restart: " + v[7],
          "restart PostgreSQL (pg_ctl -D PGDATA restart)");
  }
  return f;
}

// The receiver reachable (its endpoint when it answered).
std::optional<transport::Endpoint> CheckReceiver(const CheckArgs& a, const transport::TlsConfig& tls, Report& r) {
  std::optional<transport::Endpoint> endpoint;
  if (a.to.empty()) {
    r.Bad("receiver", "no receiver to check (none in archive_command, the config or --to)",
          "give --to HOST:PORT --tls-dir DIR");
  } else if (auto ep = transport::ParseEndpoint(a.to); !ep.ok()) {
    r.Bad("receiver", "receiver address " + a.to + ": " + ep.error().message(), "use HOST:PORT");
  } else if (a.tls_dir.empty() && !a.insecure) {
    r.Bad("receiver", "no TLS directory for " + a.to, "give --tls-dir DIR (made by walferry tls init)");
  } else {
    auto t0 = std::chrono::steady_clock::now();
    auto conn = transport::Connect(*ep, tls);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (conn.ok()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.0f ms", ms);
      r.Ok("receiver", "receiver " + a.to + " reachable, " +
                           (a.insecure ? std::string("plain TCP (insecure loopback)") : "TLS handshake accepted") +
                           " in " + buf);
      endpoint = *ep;
      conn->reset();  // the receiver sees a client that said nothing: harmless
    } else if (conn.error().code() == ErrorCode::kAuth) {
      r.Bad("receiver", "receiver: " + conn.error().message(),
            "the receiver and this side must use certificates from the same walferry tls init");
    } else {
      r.Bad("receiver", "receiver: " + conn.error().message(),
            "is walferry serve running there, listening on that address? (systemctl status walferry-serve)");
    }
    if (!a.insecure && !a.tls_dir.empty()) CheckCertificates(a, r);
  }
  return endpoint;
}

// PostgreSQL's own record of archiving failures.
void CheckArchiver(pg::Psql& psql, Report& r) {
  auto arch = psql.Query(
      "SELECT archived_count, coalesce(last_archived_wal,''), failed_count, coalesce(last_failed_wal,''), "
      "coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) FROM pg_stat_archiver");
  if (arch.ok() && !arch->empty() && (*arch)[0].size() >= 5) {
    const auto& v = (*arch)[0];
    if (v[4] == "t") {
      r.Bad("archiver", "archiver: the last archive_command failed (" + v[3] + "), " + v[2] + " failure(s) in all",
            "see the PostgreSQL server log for walferry's one-line reason");
    } else {
      r.Ok("archiver", "archiver: " + v[0] + " segment(s) archived, last " + (v[1].empty() ? "-" : v[1]) +
                           ", no failure since");
    }
  }
}

// Polls pg_stat_archiver until `name` is archived (true), or PostgreSQL
// reports its archiving failed (`failure` says so), or `deadline` passes.
bool WaitArchived(pg::Psql& psql, const std::string& name, std::chrono::steady_clock::time_point deadline,
                  std::string* failure) {
  while (std::chrono::steady_clock::now() < deadline) {
    auto st = psql.Query(
        "SELECT coalesce(last_archived_wal,'') >= '" + name + "', coalesce(last_failed_wal,'') = '" + name +
        "' AND coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false) FROM pg_stat_archiver");
    if (st.ok() && !st->empty() && (*st)[0].size() >= 2) {
      if ((*st)[0][0] == "t") {
        return true;
      }
      if ((*st)[0][1] == "t") {
        *failure = "archive_command failed for " + name;
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

// A forced WAL switch, followed to the archive.
void CheckWalSwitch(pg::Psql& psql, const CheckArgs& a, const transport::TlsConfig& tls,
                    const std::optional<transport::Endpoint>& endpoint, Report& r) {
  auto t0 = std::chrono::steady_clock::now();
  auto seg = psql.Value("SELECT pg_create_restore_point('walferry check')");
  if (seg.ok()) seg = psql.Value("SELECT pg_walfile_name(pg_switch_wal())");
  if (!seg.ok() || seg->empty()) {
    r.Bad("wal_switch", "cannot switch WAL: " + (seg.ok() ? std::string("no answer") : seg.error().message()),
          "run walferry check as a superuser (psql -U postgres), or GRANT EXECUTE ON FUNCTION "
          "pg_switch_wal() and pg_create_restore_point(text)");
  } else {
    const std::string name = *seg;
    std::string failure;
    bool archived = WaitArchived(psql, name, t0 + std::chrono::seconds(a.timeout), &failure);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!archived) {
      r.Bad("wal_switch",
            failure.empty() ? "switched to a new segment; " + name + " not archived after " + Seconds(secs)
                            : failure + " (after " + Seconds(secs) + ")",
            "see the PostgreSQL server log for walferry's one-line reason; `walferry status` shows the backlog");
    } else if (!endpoint) {
      r.Bad("wal_switch", name + " archived by PostgreSQL after " + Seconds(secs) +
                              ", but no receiver to read it back from",
            "give --to HOST:PORT --tls-dir DIR");
    } else {
      auto source = pg::RemoteSource({*endpoint, tls, a.cluster});
      CountingSink sink;
      Status st = source->Read(name, sink);
      if (st.ok()) {
        r.Ok("wal_switch", "WAL switch: " + name + " durable in the archive after " + Seconds(secs) + " (" +
                               Mib(sink.bytes()) + " read back from the receiver, checksums verified)");
      } else if (st.error().code() == ErrorCode::kNotFound) {
        r.Bad("wal_switch", name + " archived by PostgreSQL but not on receiver " + a.to,
              "archive_command ships somewhere else: check its --to and --cluster");
      } else {
        r.Bad("wal_switch", name + ": reading it back from " + a.to + " failed: " + st.error().message(),
              "run walferry verify on the receiver");
      }
    }
  }
}

int RunCheck(CheckArgs a) {
  Report r;
  int major_hint = 0;
  if (!a.conn.pgdata.empty()) {
    if (auto m = pg::DetectMajorVersion(a.conn.pgdata); m.ok()) major_hint = *m;
  }
  pg::Psql psql(a.conn, major_hint);
  const ServerFacts server = CheckSettings(psql, r);
  // The receiver: options, else the running archive_command's, else the config file's.
  FromArchiveCommand(server.archive_command, a);
  FromConfigFile(a);
  transport::TlsConfig tls{a.tls_dir, a.cluster, a.insecure};
  const auto endpoint = CheckReceiver(a, tls, r);
  if (server.ok && server.primary) CheckArchiver(psql, r);
  if (server.ok && server.primary && server.archiving_on) CheckWalSwitch(psql, a, tls, endpoint, r);
  if (a.json) {
    std::fputs(r.Json().c_str(), stdout);
  } else {
    std::fputs(r.Text(::isatty(STDOUT_FILENO) == 1 && std::getenv("NO_COLOR") == nullptr).c_str(), stdout);
  }
  std::fflush(stdout);
  return r.all_ok() ? kExitOk : kExitFailure;
}

}  // namespace

void AddCheckCommand(CLI::App& app, Context& ctx) {
  auto a = std::make_shared<CheckArgs>();
  auto* c = app.add_subcommand("check", "verify the whole archiving chain of a primary, one line per check");
  c->set_help_flag("--help", "print this help");
  c->footer(
      "On the primary: the settings PostgreSQL runs with (wal_level, archive_mode,\n"
      "archive_command or archive_library, max_wal_senders, settings waiting for a restart),\n"
      "the receiver reachable and the TLS certificates' remaining validity, the archiver's\n"
      "last failure, then a forced WAL switch (pg_switch_wal) whose segment must be archived\n"
      "by PostgreSQL and read back from the receiver with its checksums verified. The\n"
      "receiver comes from --to/--tls-dir, else from the running archive_command, else from\n"
      "the config file. Prints one line per check (✓ or ✗ and what to do); exits 1 when any\n"
      "check fails. Needs a superuser connection for the WAL switch.\n\n"
      "  walferry check --pgdata /var/lib/postgresql/15/main\n"
      "for a primary whose postgresql.conf has:\n"
      "  archive_command = 'walferry push %p --to standby:7420 --tls-dir /etc/walferry/tls'");
  AddPgConnOptions(c, &a->conn, "the primary's data directory (socket and port)",
                   "user name (a superuser, for the WAL switch)");
  c->add_option("--to", a->to, "receiver HOST:PORT (default: from archive_command)");
  c->add_option("--tls-dir", a->tls_dir, "TLS directory (default: from archive_command)");
  c->add_option("--cluster", a->cluster, "cluster (client certificate)");
  c->add_flag("--insecure-loopback", a->insecure, "plain TCP to a loopback receiver (tests only)");
  c->add_option("--config", a->config, "walferry config file (receiver keys)");
  c->add_option("--timeout", a->timeout, "seconds to wait for the switched segment")->capture_default_str();
  c->add_option("--cert-min-days", a->cert_min_days, "fail when a certificate expires sooner")->capture_default_str();
  c->add_flag("--json", a->json, "machine-readable output");
  c->callback([a, &ctx] {
    CheckArgs args = *a;
    if (!args.conn.pgdata.empty() && args.conn.pgdata[0] != '/') {
      char cwd[4096];
      if (::getcwd(cwd, sizeof cwd)) args.conn.pgdata = std::string(cwd) + "/" + args.conn.pgdata;
    }
    ctx.exit_code = RunCheck(std::move(args));
  });
}

}  // namespace walferry::cli
