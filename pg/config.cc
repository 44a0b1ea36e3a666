#include "pg/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "core/bytes.h"
#include "pg/version.h"

namespace walferry::pg {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

// Splits a conf line into name and raw value (after '='), or false when the
// line sets nothing. Handles "name = value", "name value", "name=value".
bool SplitConfLine(std::string_view line, std::string* name, std::string* raw_value) {
  std::string_view t = Trim(line);
  if (t.empty() || t.front() == '#') return false;
  std::size_t i = 0;
  while (i < t.size() && IsNameChar(t[i])) ++i;
  if (i == 0) return false;
  *name = Lower(t.substr(0, i));
  std::string_view rest = Trim(t.substr(i));
  if (!rest.empty() && rest.front() == '=') rest = Trim(rest.substr(1));
  *raw_value = std::string(rest);
  return true;
}

// Unquotes a raw conf value: 'a''b\\c' -> a'b\c; bare words end at '#'/space.
std::string UnquoteConfValue(std::string_view raw) {
  std::string out;
  if (!raw.empty() && raw.front() == '\'') {
    for (std::size_t i = 1; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '\'') {
        if (i + 1 < raw.size() && raw[i + 1] == '\'') {
          out += '\'';
          ++i;
          continue;
        }
        break;
      }
      if (c == '\\' && i + 1 < raw.size()) {
        char n = raw[++i];
        switch (n) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          default: out += n; break;
        }
        continue;
      }
      out += c;
    }
    return out;
  }
  std::size_t end = 0;
  while (end < raw.size() && raw[end] != '#' && !std::isspace(static_cast<unsigned char>(raw[end]))) {
    ++end;
  }
  return std::string(raw.substr(0, end));
}

Setting Restart(std::string name, std::string value) { return {std::move(name), std::move(value), true}; }
Setting Reload(std::string name, std::string value) { return {std::move(name), std::move(value), false}; }

}  // namespace

Result<std::string> QuoteConfValue(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\n' || c == '\r' || c == '\0') {
      return Error(ErrorCode::kInvalidArgument,
                   "a configuration value cannot contain a line break or NUL");
    }
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  out += '\'';
  return out;
}

std::string ShellQuote(std::string_view word) {
  bool safe = !word.empty();
  for (char c : word) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("%+,-./:=@_").find(c) !=
                                                              std::string_view::npos)) {
      safe = false;
      break;
    }
  }
  if (safe) return std::string(word);
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string ConninfoQuote(std::string_view value) {
  bool safe = !value.empty();
  for (char c : value) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '\'' || c == '\\' || c == '=') {
      safe = false;
      break;
    }
  }
  if (safe) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

Result<std::string> RenderSetting(const Setting& s) {
  if (s.name.empty() || !std::all_of(s.name.begin(), s.name.end(), IsNameChar)) {
    return Error(ErrorCode::kInvalidArgument, "bad parameter name: " + s.name);
  }
  auto q = QuoteConfValue(s.value);
  if (!q.ok()) return q.error().Wrap(s.name);
  return s.name + " = " + *q;
}

Result<StandbyConfig> MakeStandbyConfig(const StandbyOptions& o) {
  WF_TRY(CheckSupported(o.major));
  if (o.restore_command.empty()) {
    return Error(ErrorCode::kInvalidArgument, "a standby needs a restore_command");
  }
  if (!o.trigger_file.empty() && o.major >= 16) {
    return Error(ErrorCode::kInvalidArgument,
                 "PostgreSQL " + std::to_string(o.major) +
                     " has no promote_trigger_file; promote with `walferry promote` (pg_ctl promote)");
  }
  StandbyConfig c;
  // Recovery parameters that must not linger in postgresql.auto.conf from the
  // primary's copy (and, on 10/11, must not appear there at all).
  c.auto_conf_remove = {"primary_conninfo", "restore_command", "archive_cleanup_command",
                        "primary_slot_name", "promote_trigger_file", "recovery_target_timeline",
                        "standby_mode", "trigger_file"};
  if (o.disable_archiving) {
    // As the guide comments the primary's archive settings out on the standby.
    c.auto_conf.push_back(Restart("archive_mode", "off"));
    c.auto_conf_remove.push_back("archive_command");
    c.auto_conf_remove.push_back("archive_timeout");
  }
  c.auto_conf.push_back(Restart("hot_standby", "on"));
  std::vector<Setting> rec;
  if (o.major <= 11) rec.push_back(Reload("standby_mode", "on"));
  if (!o.primary_conninfo.empty()) rec.push_back(Restart("primary_conninfo", o.primary_conninfo));
  if (!o.primary_slot_name.empty()) rec.push_back(Restart("primary_slot_name", o.primary_slot_name));
  rec.push_back(Restart("restore_command", o.restore_command));
  if (!o.archive_cleanup_command.empty()) {
    rec.push_back(Reload("archive_cleanup_command", o.archive_cleanup_command));
  }
  // 'latest' is the default from 12 on; 10/11 default to the current timeline,
  // which would strand the standby after a promotion upstream.
  if (o.major <= 11) rec.push_back(Reload("recovery_target_timeline", "latest"));
  if (!o.trigger_file.empty()) {
    rec.push_back(Reload(o.major <= 11 ? "trigger_file" : "promote_trigger_file", o.trigger_file));
  }
  if (o.major <= 11) {
    std::string text =
        "# Standby configuration written by walferry restore-base (PostgreSQL " +
        std::to_string(o.major) + ").\n";
    for (const Setting& s : rec) {
      WF_ASSIGN(std::string line, RenderSetting(s));
      text += line + "\n";
    }
    c.recovery_conf = std::move(text);
  } else {
    c.standby_signal = true;
    for (Setting& s : rec) c.auto_conf.push_back(std::move(s));
  }
  for (const Setting& s : c.auto_conf) WF_TRY(RenderSetting(s));
  return c;
}

Result<std::string> HbaAddress(std::string_view address) {
  std::string a(Trim(address));
  if (a.empty()) return Error(ErrorCode::kInvalidArgument, "empty standby address");
  for (char c : a) {
    if (std::isspace(static_cast<unsigned char>(c)) || c == '#' || c == '"') {
      return Error(ErrorCode::kInvalidArgument, "bad standby address: " + a);
    }
  }
  if (a.find('/') != std::string::npos) return a;
  unsigned char buf[16];
  if (inet_pton(AF_INET, a.c_str(), buf) == 1) return a + "/32";
  if (inet_pton(AF_INET6, a.c_str(), buf) == 1) return a + "/128";
  return a;  // a host name; pg_hba.conf resolves it
}

Result<PrimaryConfig> MakePrimaryConfig(const PrimaryOptions& o) {
  WF_TRY(CheckSupported(o.major));
  if (o.max_wal_senders < 1) {
    return Error(ErrorCode::kInvalidArgument, "max_wal_senders must be at least 1");
  }
  if (o.wal_keep_mb < 0 || o.archive_timeout < 0) {
    return Error(ErrorCode::kInvalidArgument, "wal_keep and archive_timeout cannot be negative");
  }
  PrimaryConfig c;
  c.settings.push_back(Restart("wal_level", "replica"));
  c.settings.push_back(Restart("max_wal_senders", std::to_string(o.max_wal_senders)));
  if (o.major <= 12) {
    c.settings.push_back(Reload("wal_keep_segments", std::to_string((o.wal_keep_mb + 15) / 16)));
  } else {
    c.settings.push_back(Reload("wal_keep_size", std::to_string(o.wal_keep_mb) + "MB"));
  }
  c.settings.push_back(Restart("archive_mode", "on"));
  c.settings.push_back(Reload("archive_command", o.archive_command));
  c.settings.push_back(Reload("archive_timeout", std::to_string(o.archive_timeout)));
  for (const Setting& s : c.settings) WF_TRY(RenderSetting(s));
  if (!o.standby_address.empty()) {
    WF_ASSIGN(std::string addr, HbaAddress(o.standby_address));
    const std::string method = o.auth_method.empty() ? (o.major >= 14 ? "scram-sha-256" : "md5") : o.auth_method;
    for (const std::string* w : {&o.replication_user, &method}) {
      if (w->empty() || std::any_of(w->begin(), w->end(), [](char ch) {
            return std::isspace(static_cast<unsigned char>(ch)) || ch == '#';
          })) {
        return Error(ErrorCode::kInvalidArgument, "bad pg_hba.conf word: '" + *w + "'");
      }
    }
    c.hba_line = "host    replication     " + o.replication_user + "    " + addr + "    " + method;
  }
  return c;
}

std::map<std::string, std::string> ParseConf(std::string_view text) {
  std::map<std::string, std::string> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
    std::string name, raw;
    if (SplitConfLine(line, &name, &raw) && name != "include" && name != "include_dir" &&
        name != "include_if_exists") {
      out[name] = UnquoteConfValue(raw);
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return out;
}

Result<std::string> EditConf(std::string_view existing, const std::vector<Setting>& set,
                             const std::vector<std::string>& remove) {
  std::set<std::string> drop;
  for (const auto& r : remove) drop.insert(Lower(r));
  for (const auto& s : set) drop.insert(Lower(s.name));
  std::string out;
  if (Trim(existing).empty()) {
    out =
        "# Do not edit this file manually!\n"
        "# It will be overwritten by the ALTER SYSTEM command.\n";
  }
  std::size_t pos = 0;
  while (pos < existing.size()) {
    std::size_t nl = existing.find('\n', pos);
    std::string_view line =
        existing.substr(pos, nl == std::string_view::npos ? existing.npos : nl - pos);
    std::string name, raw;
    if (!(SplitConfLine(line, &name, &raw) && drop.count(name))) {
      out.append(line);
      out += '\n';
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  for (const auto& s : set) {
    WF_ASSIGN(std::string line, RenderSetting(s));
    out += line + "\n";
  }
  return out;
}

bool HbaHasLine(std::string_view hba_text, std::string_view line) {
  auto words = [](std::string_view l) {
    std::vector<std::string> w;
    auto hash = l.find('#');
    if (hash != std::string_view::npos) l = l.substr(0, hash);
    std::size_t i = 0;
    while (i < l.size()) {
      while (i < l.size() && std::isspace(static_cast<unsigned char>(l[i]))) ++i;
      std::size_t j = i;
      while (j < l.size() && !std::isspace(static_cast<unsigned char>(l[j]))) ++j;
      if (j > i) w.emplace_back(l.substr(i, j - i));
      i = j;
    }
    return w;
  };
  auto want = words(line);
  if (want.empty()) return true;
  std::size_t pos = 0;
  while (pos < hba_text.size()) {
    std::size_t nl = hba_text.find('\n', pos);
    std::string_view l = hba_text.substr(pos, nl == std::string_view::npos ? hba_text.npos : nl - pos);
    if (words(l) == want) return true;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return false;
}

std::vector<std::string> RestartNeeded(int major, const std::map<std::string, std::string>& current,
                                       const std::vector<Setting>& wanted) {
  (void)major;  // the defaults below hold for every supported major (10..17)
  static const std::map<std::string, std::string> kDefaults = {
      {"wal_level", "replica"}, {"max_wal_senders", "10"}, {"archive_mode", "off"},
      {"hot_standby", "on"}};
  std::vector<std::string> out;
  for (const Setting& s : wanted) {
    if (!s.needs_restart) continue;
    std::string name = Lower(s.name);
    std::string now;
    if (auto it = current.find(name); it != current.end()) {
      now = it->second;
    } else if (auto d = kDefaults.find(name); d != kDefaults.end()) {
      now = d->second;
    }
    if (Lower(now) != Lower(s.value)) out.push_back(s.name);
  }
  return out;
}

}  // namespace walferry::pg
