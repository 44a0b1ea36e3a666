// PostgreSQL wrappers: get, cleanup, verify, basebackup, restore-base,
// setup primary, status, promote. The logic lives in pg/; this file parses
// arguments, picks the archive, prints, and maps errors to exit codes.
#include <sys/stat.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/protocol.h"
#include "archive/archive.h"
#include "cli/cmd_pg.h"
#include "cli/commands.h"
#include "cli/s3_options.h"
#include "core/path.h"
#include "core/result.h"
#include "pg/archive_ops.h"
#include "pg/status.h"

namespace walferry::cli {
namespace pgcmd {

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

Result<OpenedCluster> OpenCluster(const std::string& root, const std::string& cluster) {
  auto arch = OpenArchiveRoot(root);
  if (!arch.ok()) return arch.error();
  auto resolved = pg::ResolveCluster(**arch, cluster);
  if (!resolved.ok()) return resolved.error();
  return OpenedCluster{std::move(arch).value(), std::move(resolved).value()};
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

}  // namespace pgcmd

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
