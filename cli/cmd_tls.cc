#include "cli/commands.h"

namespace walferry::cli {

// Not written yet.
void AddTlsCommands(CLI::App&, Context&) {}

}  // namespace walferry::cli
