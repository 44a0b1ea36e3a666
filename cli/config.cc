#include "cli/config.h"

#include <cstdlib>

#include "core/bytes.h"
#include "core/fd.h"

namespace walferry::cli {

Result<Config> Config::Parse(std::string_view text, const std::string& origin) {
  Config c;
  int line_no = 0;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    line = Trim(line);
    if (line.empty() || line.front() == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      return Error(ErrorCode::kInvalidArgument,
                   origin + ":" + std::to_string(line_no) + ": expected `key = value`");
    }
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    } else if (auto hash = value.find(" #"); hash != std::string_view::npos) {
      value = Trim(value.substr(0, hash));  // trailing comment
    }
    // The optional `--` goes first: `-- = x` has an empty key too.
    if (key.starts_with("--")) key.remove_prefix(2);
    if (key.empty()) {
      return Error(ErrorCode::kInvalidArgument, origin + ":" + std::to_string(line_no) + ": empty key");
    }
    c.values_[std::string(key)] = std::string(value);
  }
  return c;
}

Result<Config> Config::Load(const std::string& path) {
  WF_ASSIGN(std::string text, ReadSmallFile(path, 1 << 20));
  return Parse(text, path);
}

const std::string* Config::Find(std::string_view key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

CLI::Option* AddConfigOption(CLI::App* sub, std::string* path) {
  return sub->add_option("--config", *path,
                         "Configuration file of `key = value` lines (default: $WALFERRY_CONFIG)");
}

std::string ConfigPath(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  const char* env = std::getenv("WALFERRY_CONFIG");
  return env ? env : "";
}

Status ApplyConfig(CLI::App& sub, const std::string& flag_value) {
  std::string path = ConfigPath(flag_value);
  if (path.empty()) return Status::Ok();
  auto cfg = Config::Load(path);
  if (!cfg.ok()) return cfg.error().Wrap("config");
  for (CLI::Option* opt : sub.get_options()) {
    if (opt->count() > 0) continue;  // the command line wins
    std::string name = opt->get_single_name();
    if (name.empty() || name == "config" || name == "help") continue;
    const std::string* v = cfg->Find(name);
    if (!v) continue;
    try {
      opt->add_result(*v);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      return Error(ErrorCode::kInvalidArgument, path + ": " + name + " = " + *v + ": " + e.what());
    }
  }
  return Status::Ok();
}

}  // namespace walferry::cli
