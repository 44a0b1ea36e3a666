#include "cli/commands.h"

namespace walferry::cli {

// Not written yet.
void AddPgCommands(CLI::App&, Context&) {}

}  // namespace walferry::cli
