#include "cli/commands.h"

namespace walferry::cli {

// Not written yet.
void AddTransferCommands(CLI::App&, Context&) {}

}  // namespace walferry::cli
