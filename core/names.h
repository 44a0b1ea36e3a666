// Names that come from outside (certificates, the wire, the command line):
// the one cluster-name rule, and a printable form for error messages.
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "core/result.h"

namespace walferry {

// Cluster names: [A-Za-z0-9_.-]{1,64}, not starting with '.' or '-'. A cluster
// name becomes a directory under the archive root, a certificate CN and a
// command-line argument: a leading '.' would hide it (and allow "." or ".."),
// a leading '-' would read as an option to the tools an operator runs on it.
// kRefused with a one-line reason otherwise.
Status ValidateClusterName(std::string_view cluster);

// Printable form of an untrusted name for an error message: control bytes,
// non-ASCII and '\' become \xNN, and the result is cut at 80 characters.
std::string Printable(std::string_view name);

}  // namespace walferry
