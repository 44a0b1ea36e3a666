// The PostgreSQL subcommands (get, cleanup, verify, basebackup, restore-base,
// setup primary, status, promote), one cli/cmd_<verb>.cc each, and what they
// share. The logic lives in pg/; these files parse arguments, pick the
// archive, print, and map errors to exit codes.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "cli/commands.h"
#include "core/result.h"
#include "pg/status.h"

namespace walferry::cli {

void AddGet(CLI::App& app, Context& ctx);
void AddCleanup(CLI::App& app, Context& ctx);
void AddVerify(CLI::App& app, Context& ctx);
void AddBasebackup(CLI::App& app, Context& ctx);
void AddRestoreBase(CLI::App& app, Context& ctx);
void AddSetup(CLI::App& app, Context& ctx);
void AddStatus(CLI::App& app, Context& ctx);
void AddPromote(CLI::App& app, Context& ctx);

namespace pgcmd {
// `p` made absolute (as given when the working directory is unreadable).
std::string Absolute(const std::string& p);
bool IsDirectory(const std::string& p);
// A --from value names a remote receiver when it is HOST:PORT and not a directory.
bool IsRemote(const std::string& from);
// Opens an existing archive root for reading (never creates a mistyped ROOT).
Result<std::unique_ptr<archive::Archive>> OpenArchiveRoot(const std::string& root);
// An archive root opened for reading and the cluster in it that --cluster
// names (pg::ResolveCluster: the only one, or main, when empty).
struct OpenedCluster {
  std::unique_ptr<archive::Archive> archive;
  std::string cluster;
};
Result<OpenedCluster> OpenCluster(const std::string& root, const std::string& cluster);
int Fail(Context& ctx, const Error& e);
// Adds the agent's own STATUS figures when its socket answers.
void AskAgent(pg::ServerStatus& s);
std::string Join(const std::vector<std::string>& v, const std::string& sep);
}  // namespace pgcmd

}  // namespace walferry::cli
