#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "cli/commands.h"
#include "core/io.h"

namespace walferry::cli {

int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return kExitOk;
    case ErrorCode::kInvalidArgument: return kExitUsage;
    case ErrorCode::kNotFound: return kExitFailure;
    case ErrorCode::kExists: return kExitExists;
    case ErrorCode::kExistsDifferent: return kExitExistsDifferent;
    case ErrorCode::kCorrupt:
    case ErrorCode::kProtocol: return kExitCorrupt;
    case ErrorCode::kIo: return kExitIo;
    case ErrorCode::kNoSpace: return kExitNoSpace;
    case ErrorCode::kNetwork: return kExitNetwork;
    case ErrorCode::kAuth: return kExitAuth;
    case ErrorCode::kRefused: return kExitRefused;
    case ErrorCode::kUnsupported:
    case ErrorCode::kInternal: return kExitInternal;
  }
  return kExitInternal;
}

void IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }

int ReportError(const Error& error) {
  std::fprintf(stderr, "walferry: %s\n", error.message().c_str());
  return ExitCodeFor(error.code());
}

}  // namespace walferry::cli

int main(int argc, char** argv) {
  using namespace walferry::cli;
  CLI::App app{
      "walferry: ships PostgreSQL WAL and base backups to a standby, fast and safely.\n"
      "  walferry serve --root /srv/walferry --listen 0.0.0.0:7420 --tls-dir /etc/walferry/tls\n"
      "  archive_command = 'walferry push %p'\n"
      "  restore_command = 'walferry get %f %p'",
      "walferry"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "walferry 0.1.0");
  // The one place the process reads WALFERRY_IO (core/io.h: library code reads no environment).
  if (const char* io = std::getenv("WALFERRY_IO"); io && std::string_view(io) == "pread") {
    walferry::ForcePreadFileIo(true);
  }
  Context ctx;
  AddCompressCommands(app, ctx);
  AddTransferCommands(app, ctx);
  AddTlsCommands(app, ctx);
  AddPgCommands(app, ctx);
  AddCheckCommand(app, ctx);
  AddAgentCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return ctx.exit_code;
}
