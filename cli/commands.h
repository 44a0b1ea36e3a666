// The walferry binary's subcommand families. Each Add* function registers its
// subcommands on `app`; a subcommand's callback stores its process exit code in
// `ctx.exit_code`. Exit codes stay within 1..125 (PostgreSQL treats higher codes,
// or death by signal, from archive_command as fatal for the archiver).
#pragma once

#include <CLI/CLI.hpp>

#include "core/result.h"

namespace walferry::cli {

struct Context {
  int exit_code = 0;
};

// Process exit codes, shared by all subcommands.
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,         // generic; also `get`: segment not in the archive
  kExitUsage = 2,           // bad arguments
  kExitCorrupt = 3,         // checksum mismatch, truncated or corrupt input
  kExitExistsDifferent = 4, // archive already holds different content under the name
  kExitNetwork = 5,         // receiver unreachable, connection lost
  kExitAuth = 6,            // certificate refused
  kExitNoSpace = 7,         // disk full (here or on the receiver)
  kExitRefused = 8,         // receiver refused the name/cluster/content
  kExitIo = 9,              // other local I/O error
  kExitExists = 10,         // output exists (without -f)
  kExitInternal = 70,
};

// Prints "walferry: <message>" on one line to stderr and returns the exit code
// that matches the error's code.
int ReportError(const Error& error);
int ExitCodeFor(ErrorCode code);
// Process-wide set-up a command does before it touches pipes or sockets:
// SIGPIPE ignored, so a vanished reader is an EPIPE error, not death by signal.
// Only the binary changes signal dispositions (never library code).
void IgnoreSigpipe();

void AddCompressCommands(CLI::App& app, Context& ctx);   // compress, decompress
void AddTransferCommands(CLI::App& app, Context& ctx);   // serve, push, send
void AddTlsCommands(CLI::App& app, Context& ctx);        // tls init
void AddAgentCommands(CLI::App& app, Context& ctx);     // agent
void AddPgCommands(CLI::App& app, Context& ctx);         // get, cleanup, basebackup, restore-base,
                                                         // setup, status, verify, promote
void AddCheckCommand(CLI::App& app, Context& ctx);       // check

}  // namespace walferry::cli
