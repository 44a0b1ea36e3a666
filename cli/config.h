// Configuration file shared by all subcommands: `--config FILE` or the
// WALFERRY_CONFIG environment variable. Format: one `key = value` per line,
// '#' starts a comment, blank lines ignored, values may be "quoted". Keys are
// the long option names (root, listen, store, tls-dir, to, cluster, ...);
// a key a subcommand does not have is ignored, so one file serves every
// command. Values given on the command line win over the file.
//
// Usage in a subcommand:
//   std::string config;
//   AddConfigOption(sub, &config);
//   sub->callback([&] { if (auto st = ApplyConfig(*sub, config); !st.ok()) ...; });
#pragma once

#include <map>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "core/result.h"

namespace walferry::cli {

class Config {
 public:
  // Parses `text`; kInvalidArgument "FILE:LINE: ..." on a malformed line.
  static Result<Config> Parse(std::string_view text, const std::string& origin);
  // Reads and parses a file (at most 1 MiB).
  static Result<Config> Load(const std::string& path);
  // nullptr when the key is absent.
  const std::string* Find(std::string_view key) const;
  const std::map<std::string, std::string, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, std::string, std::less<>> values_;
};

// Adds `--config FILE` to `sub`.
CLI::Option* AddConfigOption(CLI::App* sub, std::string* path);

// The config path in effect: `flag_value`, else $WALFERRY_CONFIG, else "".
std::string ConfigPath(const std::string& flag_value);

// Loads the config in effect (none -> Ok) and gives every option of `sub` that
// was not set on the command line the file's value for its long name.
// Errors: the file cannot be read or parsed, or a value is invalid for its option.
Status ApplyConfig(CLI::App& sub, const std::string& flag_value);

}  // namespace walferry::cli
