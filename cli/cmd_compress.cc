#include "cli/commands.h"

namespace walferry::cli {

// Not written yet.
void AddCompressCommands(CLI::App&, Context&) {}

}  // namespace walferry::cli
