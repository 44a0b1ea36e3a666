// `walferry serve`, `walferry push`, `walferry send`.
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/protocol.h"
#include "archive/archive.h"
#include "cli/s3_options.h"
#include "cli/commands.h"
#include "cli/client_options.h"
#include "cli/config.h"
#include "cli/fanout_run.h"
#include "cli/log.h"
#include "cli/metrics.h"
#include "cli/signals.h"
#include "cli/progress.h"
#include "core/path.h"
#include "core/stream.h"
#include "pg/push_failure.h"
#include "transport/net.h"
#include "transport/sender.h"
#include "transport/server.h"
#include "transport/tls_session.h"

namespace walferry::cli {
namespace {


// --- serve ---
struct ServeArgs {
  std::string config;
  std::string root;
  std::string listen;
  std::string store = "zstd";
  std::string tls_dir;
  bool insecure = false;
  std::size_t max_connections = 64;
  std::string log_level = "info";
  std::string metrics;  // HOST:PORT of the Prometheus endpoint; "" = none
  std::size_t max_transfers_per_cluster = 16;
  double handshake_timeout_s = 10;
  double idle_timeout_s = 60;
  std::uint64_t max_incoming_mib = 256 * 1024;
  std::uint64_t max_buffer_mb = 0;  // 0: transport::DefaultBufferBudget(max_connections)
  std::uint64_t quarantine_max_mib = archive::kDefaultQuarantineCap >> 20;
  std::string store_url;  // s3://BUCKET/PREFIX: a gateway; --root then holds resume state only
  cli::S3Flags s3;
};

std::chrono::milliseconds SecondsOption(double s) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(s * 1000));
}

// The receiver's TLS settings; --insecure-loopback only on a loopback address.
Result<transport::TlsConfig> ServeTls(const ServeArgs& a, const transport::Endpoint& ep) {
  transport::TlsConfig tls;
  tls.tls_dir = a.tls_dir;
  tls.insecure_loopback = a.insecure;
  tls.handshake_timeout = SecondsOption(a.handshake_timeout_s);
  if (tls.tls_dir.empty() && !tls.insecure_loopback) {
    return Error(ErrorCode::kInvalidArgument,
                 "serve needs --tls-dir DIR (made by `walferry tls init`)");
  }
  if (tls.insecure_loopback && !transport::IsLoopback(ep)) {
    return Error(ErrorCode::kInvalidArgument,
                 "--insecure-loopback is refused for non-loopback address " + a.listen);
  }
  return tls;
}

// The limits of `serve`'s options.
transport::ServerOptions ServeLimits(const ServeArgs& a, bool insecure) {
  transport::ServerOptions so;
  so.insecure = insecure;
  so.max_connections = std::max<std::size_t>(1, a.max_connections);
  so.max_transfers_per_cluster = a.max_transfers_per_cluster;
  so.handshake_timeout = SecondsOption(a.handshake_timeout_s);
  so.idle_timeout = SecondsOption(a.idle_timeout_s);
  so.max_incoming_bytes_per_cluster = a.max_incoming_mib << 20;
  so.max_buffer_bytes = a.max_buffer_mb << 20;
  return so;
}

// `walferry serve`: ~70 lines on purpose: the wiring of the receiver in the
// order it must happen (signals blocked before any thread starts, the store
// and listener before the server, the signal thread around Run).
int RunServe(const ServeArgs& a) {
  auto level = ParseLogLevel(a.log_level);
  if (!level.ok()) return ReportError(level.error());
  Logger log = Logger::ForStderr(*level);
  if (a.root.empty()) return ReportError(Error(ErrorCode::kInvalidArgument, "serve needs --root DIR"));
  if (a.listen.empty()) return ReportError(Error(ErrorCode::kInvalidArgument, "serve needs --listen HOST:PORT"));
  auto ep = transport::ParseEndpoint(a.listen);
  if (!ep.ok()) return ReportError(ep.error());
  auto store = archive::ParseStoreFormat(a.store);
  if (!store.ok()) return ReportError(store.error());
  auto tls_or = ServeTls(a, *ep);
  if (!tls_or.ok()) return ReportError(tls_or.error());
  const transport::TlsConfig tls = *tls_or;
  // Signals are taken by one thread (sigtimedwait); every other thread blocks them.
  const sigset_t set = BlockSignals({SIGTERM, SIGINT, SIGHUP});
  IgnoreSigpipe();

  auto archive = a.store_url.empty() ? archive::Archive::Open(a.root, *store)
                                     : cli::OpenS3Url(a.store_url, a.s3, a.root, *store);
  if (!archive.ok()) return ReportError(archive.error());
  (*archive)->SetQuarantineCap(a.quarantine_max_mib << 20);
  auto listener = transport::Listen(*ep, tls);
  if (!listener.ok()) return ReportError(listener.error());
  // Big buffers (frames, chunks, compressor output) straight from mmap and
  // back to the system when freed: glibc's dynamic threshold would otherwise
  // keep freed 16 MiB buffers in per-thread arenas, and the memory the
  // receiver holds would exceed what --max-buffer-mb admits (docs/receiver-limits.md).
  ::mallopt(M_MMAP_THRESHOLD, 1 << 20);
  transport::ServerOptions so = ServeLimits(a, tls.insecure_loopback);
  MetricsRegistry metrics;
  DescribeServeMetrics(metrics);
  so.log = [&log, &metrics](const std::string& line) {
    log.Log(ServeEventLevel(line), line);
    ObserveServeEvent(metrics, line, static_cast<double>(::time(nullptr)));
  };
  auto metrics_server = StartMetrics(a.metrics, metrics, [&metrics, root = a.root] { UpdateArchiveGauges(metrics, root); },
                                     log, "serve");
  if (!metrics_server.ok()) return ReportError(metrics_server.error());
  transport::Server server(**archive, so);
  log.Log(LogLevel::kInfo, "serve: listening on " + ep->host + " port " + std::to_string((*listener)->port()) +
                               ", root " + (a.store_url.empty() ? a.root : a.store_url) + ", store " + a.store +
                               ", buffers " + std::to_string(server.buffer_budget().capacity() >> 20) + " MiB" +
                               (tls.insecure_loopback ? " (INSECURE plain TCP, loopback only)" : ""));
  if (!tls.insecure_loopback) {
    std::string p = transport::CertLifetimeProblem(a.tls_dir + "/server.crt");
    if (!p.empty()) {
      log.Log(LogLevel::kWarn, "serve: WARNING: server certificate " + p + "; senders will refuse it (renew: walferry tls init " +
                                   a.tls_dir + " --renew server, then SIGHUP)");
    }
  }
  std::atomic<bool> done{false};
  std::thread signals = SignalWaiter(set, done, [&](int sig) {
    if (sig == SIGHUP) {
      // New TLS files (renewed certificate, crl.pem) for new connections; open ones go on.
      auto r = (*listener)->Reload();
      if (r.ok()) {
        log.Log(LogLevel::kInfo, "serve: SIGHUP: " + *r);
      } else {
        log.Log(LogLevel::kWarn, "serve: SIGHUP: reload failed, keeping the old TLS files: " + r.error().message());
      }
      return false;
    }
    if (sig != SIGTERM && sig != SIGINT) return false;
    log.Log(LogLevel::kInfo, "serve: signal " + std::to_string(sig) + ", shutting down");
    server.Stop();
    return true;
  });
  Status st = server.Run(**listener);
  done.store(true);
  signals.join();
  if (!st.ok()) return ReportError(st.error());
  log.Log(LogLevel::kInfo, "serve: stopped after " + std::to_string(server.transfers_done()) + " transfers");
  return kExitOk;
}

// Asks the agent to archive `path`. The exit code when the agent answered;
// nullopt when it could not be asked (not running, killed, not ours): the
// caller then pushes alone, exactly as without an agent.
std::optional<int> PushThroughAgent(const std::string& socket, const std::string& path, int timeout_s) {
  std::string abs = path;
  if (abs.empty() || abs[0] != '/') {
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) return std::nullopt;
    abs = std::string(cwd) + "/" + path;
  }
  std::string name = BaseName(path);
  auto a = agent::AskPush(socket, name, abs, std::chrono::seconds(std::max(0, timeout_s)));
  if (!a.ok()) {
    if (a.error().code() != ErrorCode::kNotFound && a.error().code() != ErrorCode::kNetwork) {
      std::fprintf(stderr, "walferry: push %s: not using the agent: %s\n", name.c_str(), a.error().message().c_str());
    }
    return std::nullopt;
  }
  if (a->ok) return kExitOk;
  return ReportError(Error(a->code, a->message).Wrap("push " + name + " (through the agent)"));
}

struct PushArgs {
  ClientArgs client;
  std::string path;
  int level = 0;
  std::size_t chunk_kib = 1024;
  std::string agent_socket;
  int agent_timeout = 600;
};

struct SendArgs {
  ClientArgs client;
  std::string input;
  std::string name;
  std::size_t threads = 0;
  bool zstd = false, gzip = false;
  int level = 0;
  std::size_t chunk_kib = 1024;
  ProgressMode progress = ProgressMode::kAuto;
  long long expected_size = -1;
  std::string expect = "auto";
};

// Lean: a 16 MiB segment needs few chunk buffers; PostgreSQL retries a failed push.
void TunePush(transport::SendOptions& o, const PushArgs& a, bool fanout) {
  o.kind = transport::WireKind::kWal;
  o.threads = std::min<std::size_t>(2, std::max(1u, std::thread::hardware_concurrency()));
  if (fanout) o.threads = 1;  // one compression thread per target's connection
  o.in_flight = o.threads + 1;
  // With several targets a dead one costs each push its reconnects: one
  // (the backlog catches it up later).
  if (a.client.retries < 0) o.max_retries = fanout ? 1 : 3;
  // zstd -1 by default: on WAL it stores within ~3% of -3 at ~60% of the CPU,
  // and CPU is what bounds a serial archive_command.
  o.level = a.level > 0 ? a.level : 1;
  o.chunk_size = a.chunk_kib * 1024;
  // archive_mode = always re-archives what the primary archived: ask first.
  o.ask_have = true;
}

// `walferry push PATH`: one WAL segment, through the agent when it runs,
// else shipped here (to each target with several --to).
int RunPush(const PushArgs& a) {
  auto targets = ClientTargets(a.client);
  if (!targets.ok()) {
    return ReportError(targets.error());
  }
  const bool fanout = targets->size() > 1;
  auto tune = [&a, fanout](transport::SendOptions& o) { TunePush(o, a, fanout); };
  std::string name = BaseName(a.path);
  IgnoreSigpipe();
  if (fanout) {
    // The agent ships to one receiver; with several, push ships itself.
    Status st = RunFanout(a.client, *targets, tune, a.path, name, DirName(a.path), "push " + name);
    if (!st.ok()) {
      Error e = st.error().Wrap("push " + name);
      (void)pg::RecordPushFailure(a.path, e.message());
      return ReportError(e);
    }
    pg::ClearPushFailure(a.path);
    return kExitOk;
  }
  auto o = ClientOptions(a.client);
  if (!o.ok()) {
    return ReportError(o.error());
  }
  if (!a.agent_socket.empty()) {
    if (auto rc = PushThroughAgent(a.agent_socket, a.path, a.agent_timeout)) {
      return *rc;
    }
  }
  tune(*o);
  transport::Sender sender(std::move(*o));
  auto r = sender.SendFile(a.path, name);
  if (!r.ok()) {
    Error e = r.error().Wrap("push " + name);
    (void)pg::RecordPushFailure(a.path, e.message());  // for `walferry status`
    return ReportError(e);
  }
  pg::ClearPushFailure(a.path);
  return kExitOk;
}

// send with several --to: a file each target reads on its own.
int SendFanout(const SendArgs& a, const std::vector<std::string>& targets) {
  IgnoreSigpipe();
  if (a.input == "-") {
    return ReportError(Error(ErrorCode::kInvalidArgument,
                             "send to several --to needs a FILE, not stdin (a target that "
                             "missed it must be able to read it again later)"));
  }
  auto tune = [&a](transport::SendOptions& o) {
    o.threads = 1;
    o.chunk_size = a.chunk_kib * 1024;
    if (a.level > 0) o.level = a.level;
    if (a.expect == "tar") o.kind = transport::WireKind::kTar;
    if (a.expect == "any") o.kind = transport::WireKind::kAny;
    o.ask_have = true;
    if (a.client.retries < 0) o.max_retries = 2;
  };
  Status st = RunFanout(a.client, targets, tune, a.input, a.name, "", "send " + a.name);
  return st.ok() ? kExitOk : ReportError(st.error().Wrap("send " + a.name));
}

// send to one receiver: a file (re-read on resume) or a stream.
int SendOne(const SendArgs& a) {
  auto o = ClientOptions(a.client);
  if (!o.ok()) {
    return ReportError(o.error());
  }
  IgnoreSigpipe();
  o->threads = a.threads;
  o->chunk_size = a.chunk_kib * 1024;
  if (a.level > 0) o->level = a.level;
  if (a.expect == "tar") o->kind = transport::WireKind::kTar;
  if (a.expect == "any") o->kind = transport::WireKind::kAny;
  auto src = OpenSource(a.input);
  if (!src.ok()) {
    return ReportError(src.error());
  }
  const long long total = (*src)->SizeHint() >= 0 ? (*src)->SizeHint() : a.expected_size;
  Progress progress("", total, ProgressEnabled(a.progress));
  o->note = [&progress](const std::string& m) {
    progress.Break();
    std::fprintf(stderr, "walferry send: %s\n", m.c_str());
  };
  o->progress = [&progress](std::uint64_t done) { progress.Update(done); };
  transport::Sender sender(std::move(*o));
  Result<transport::SendResult> r = Error(ErrorCode::kInternal, "not run");
  if ((*src)->SizeHint() >= 0 && a.input != "-") {
    src->reset();  // SendFile re-opens the file itself (and again to resume)
    r = sender.SendFile(a.input, a.name);
  } else {
    r = sender.SendStream(**src, a.name);
  }
  if (!r.ok()) {
    progress.Break();
    return ReportError(r.error().Wrap("send " + a.name));
  }
  progress.Finish(r->raw_bytes);
  return kExitOk;
}

// `walferry send FILE|-`.
int RunSend(SendArgs& a) {
  if (a.name.empty()) {
    if (a.input == "-") {
      return ReportError(Error(ErrorCode::kInvalidArgument, "sending stdin needs --name NAME"));
    }
    a.name = BaseName(a.input);
  }
  if (a.chunk_kib < 64 || a.chunk_kib > 16 * 1024) {
    return ReportError(Error(ErrorCode::kInvalidArgument, "--chunk-kib must be 64..16384"));
  }
  auto targets = ClientTargets(a.client);
  if (!targets.ok()) {
    return ReportError(targets.error());
  }
  if (targets->size() > 1) return SendFanout(a, *targets);
  return SendOne(a);
}

void AddServe(CLI::App& app, Context& ctx) {
  auto serve_args = std::make_shared<ServeArgs>();
  CLI::App* serve = app.add_subcommand("serve", "Receive WAL and files (runs on the standby)");
  AddConfigOption(serve, &serve_args->config);
  serve->add_option("--root", serve_args->root, "Archive root directory");
  serve->add_option("--listen", serve_args->listen, "HOST:PORT to listen on");
  serve->add_option("--store", serve_args->store, "How files rest on disk: zstd (default), gzip, raw");
  serve->add_option("--tls-dir", serve_args->tls_dir, "Directory made by `walferry tls init`");
  serve->add_flag("--insecure-loopback", serve_args->insecure, "Plain TCP on loopback (tests and demos only)");
  AddLogLevelOption(serve, &serve_args->log_level);
  serve->add_option("--metrics", serve_args->metrics,
                    "HOST:PORT for Prometheus text metrics at /metrics (e.g. 127.0.0.1:9420)");
  serve->add_option("--max-connections", serve_args->max_connections,
                    "Connections served at once; more get a 'receiver busy' error (default 64)")
      ->check(CLI::Range(1, 100000));
  serve->add_option("--max-transfers-per-cluster", serve_args->max_transfers_per_cluster,
                    "Transfers of one cluster in progress at once; more are refused (default 16, 0 = no limit)");
  serve->add_option("--handshake-timeout", serve_args->handshake_timeout_s,
                    "Seconds a new connection has for its TLS handshake and for HELLO; then it is dropped (default 10)")
      ->check(CLI::Range(0.1, 3600.0));
  serve->add_option("--idle-timeout", serve_args->idle_timeout_s,
                    "Seconds the receiver waits for a peer's next frame before dropping it (default 60)")
      ->check(CLI::Range(0.1, 86400.0));
  serve->add_option("--max-incoming-mib", serve_args->max_incoming_mib,
                    "Cap on one cluster's temp data in ROOT/.incoming, in MiB (default 262144 = 256 GiB, 0 = none)");
  serve->add_option("--max-buffer-mb", serve_args->max_buffer_mb,
                    "Memory (MiB) all connections together may hold for frames and decompressed chunks; a frame "
                    "waits up to 10 s for it, then gets a retryable 'receiver busy' (default: 2 MiB per "
                    "--max-connections, at least 129 MiB)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30));
  serve->add_option("--quarantine-max-mib", serve_args->quarantine_max_mib,
                    "Per-cluster cap of the quarantine that keeps refused same-name-different-content "
                    "files (default 1024)");
  serve->add_option("--store-url", serve_args->store_url,
                    "s3://BUCKET/PREFIX: store in an S3 bucket; --root DIR keeps only resume state");
  serve->add_option("--s3-endpoint", serve_args->s3.endpoint, "S3 endpoint URL (default: $WALFERRY_S3_ENDPOINT)");
  serve->add_option("--s3-credentials", serve_args->s3.credentials,
                    "File with aws_access_key_id/aws_secret_access_key (default: AWS_* variables)");
  serve->add_option("--s3-part-size", serve_args->s3.part_size_mib, "Multipart threshold and part size, MiB (>= 5)");
  serve->add_option("--s3-timeout", serve_args->s3.timeout_seconds, "Seconds per S3 request attempt");
  serve->callback([serve, serve_args, &ctx] {
    if (Status st = ApplyConfig(*serve, serve_args->config); !st.ok()) {
      ctx.exit_code = ReportError(st.error());
      return;
    }
    ctx.exit_code = RunServe(*serve_args);
  });
}

void AddPush(CLI::App& app, Context& ctx) {
  auto push_args = std::make_shared<PushArgs>();
  CLI::App* push = app.add_subcommand("push", "Archive one WAL file (archive_command = 'walferry push %p')");
  push->add_option("PATH", push_args->path, "WAL file (relative to the data directory)")->required();
  AddClientOptions(push, push_args->client);
  push->add_option("-l,--level", push_args->level, "Compression level (default: zstd 1 / gzip 1)");
  push->add_option("--chunk-kib", push_args->chunk_kib, "Chunk size in KiB (64..16384, default 1024)")
      ->check(CLI::Range(64, 16 * 1024));
  push->add_option("--agent-socket", push_args->agent_socket,
                   "Ask the `walferry agent` listening here first (push alone when it is not running)");
  push->add_option("--agent-timeout", push_args->agent_timeout, "Seconds to wait for the agent's answer (default 600)");
  push->callback([push, push_args, &ctx] {
    if (Status st = ApplyConfig(*push, push_args->client.config); !st.ok()) {
      ctx.exit_code = ReportError(st.error());
      return;
    }
    ctx.exit_code = RunPush(*push_args);
  });
}

void AddSend(CLI::App& app, Context& ctx) {
  auto send_args = std::make_shared<SendArgs>();
  CLI::App* send = app.add_subcommand("send", "Ship a file or stdin to the receiver");
  send->add_option("FILE", send_args->input, "File to send, or - for stdin")->required();
  send->add_option("--name", send_args->name, "Name in the archive");
  AddClientOptions(send, send_args->client);
  send->add_option("-p,--threads", send_args->threads, "Compression threads (default: all cores)");
  send->add_flag("--zstd", send_args->zstd, "Prefer zstd (the receiver's store format decides)");
  send->add_flag("--gzip", send_args->gzip, "Prefer gzip (the receiver's store format decides)");
  send->add_option("-l,--level", send_args->level, "Compression level");
  send->add_option("--chunk-kib", send_args->chunk_kib, "Chunk size in KiB (default 1024)");
  send->add_option("--expect", send_args->expect,
                   "auto (default): a tar stream is stored only when complete; tar: the stream must be a "
                   "complete tar; any: no content check (e.g. pg_basebackup --no-manifest)")
      ->check(CLI::IsMember({"auto", "tar", "any"}));
  AddProgressOptions(send, &send_args->progress);
  // Set by `basebackup`: the server's estimate of a stream's size, for the ETA.
  send->add_option("--expected-size", send_args->expected_size)->group("");
  send->callback([send, send_args, &ctx] {
    if (Status st = ApplyConfig(*send, send_args->client.config); !st.ok()) {
      ctx.exit_code = ReportError(st.error());
      return;
    }
    ctx.exit_code = RunSend(*send_args);
  });
}

}  // namespace

void AddTransferCommands(CLI::App& app, Context& ctx) {
  AddServe(app, ctx);
  AddPush(app, ctx);
  AddSend(app, ctx);
}

}  // namespace walferry::cli
