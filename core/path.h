// Path helpers used by every module: directory and base name, absolute paths,
// and the running binary's own path. Thread-safe (AbsolutePath reads the
// process's working directory at the time of the call).
#pragma once

#include <string>

#include "core/result.h"

namespace walferry {

// Directory part of a path ("." when none, "/" for "/x").
std::string DirName(const std::string& path);
// Last component of a path (the whole path when it has no '/').
std::string BaseName(const std::string& path);
// `path` made absolute against the current directory ("" stays ""; an
// absolute path is returned as is). ErrnoError when getcwd fails.
Result<std::string> AbsolutePath(const std::string& path);
// The absolute path of the running executable (/proc/self/exe).
Result<std::string> SelfExePath();

}  // namespace walferry
