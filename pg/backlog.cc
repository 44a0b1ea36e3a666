#include "pg/backlog.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "archive/archive.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/path.h"

namespace walferry::pg {
namespace {

constexpr std::string_view kEntryMagic = "walferry-backlog 1\n";
constexpr std::string_view kStateMagic = "walferry-target 1\n";
constexpr const char* kStateFile = "state";
constexpr std::size_t kMaxEntryText = 8192;

std::string Check(std::string_view body) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx",
                static_cast<unsigned long long>(Xxh3_64(std::as_bytes(std::span(body.data(), body.size())))));
  return buf;
}

bool SafeLine(std::string_view v) {
  for (char c : v) {
    if (c == '\n' || c == '\r' || c == '\0') return false;
  }
  return true;
}

// Splits "key value\n..." into fields; the last line must be "check HEX" over
// everything before it. nullopt on any deviation.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseChecked(std::string_view text,
                                                                             std::string_view magic) {
  if (text.size() > kMaxEntryText || text.substr(0, magic.size()) != magic) return std::nullopt;
  auto pos = text.rfind("check ");
  if (pos == std::string_view::npos || pos == 0 || text[pos - 1] != '\n') return std::nullopt;
  std::string_view body = text.substr(0, pos);
  std::string_view check = text.substr(pos + 6);
  if (check.size() != 17 || check.back() != '\n' || check.substr(0, 16) != Check(body)) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view rest = body.substr(magic.size());
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp == 0) return std::nullopt;
    out.emplace_back(std::string(line.substr(0, sp)), std::string(line.substr(sp + 1)));
  }
  return out;
}

bool ParseInt(const std::string& s, std::int64_t* v) {
  if (s.empty() || s.size() > 19) return false;
  std::int64_t x = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    x = x * 10 + (c - '0');
  }
  *v = x;
  return true;
}

std::string WithCheck(std::string body) {
  body += "check " + Check(body) + "\n";
  return body;
}

std::int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// "<20 digits>-<NAME>" -> (ns, NAME); nullopt otherwise.
std::optional<std::pair<std::int64_t, std::string>> SplitEntryFile(std::string_view file) {
  if (file.size() < 22 || file[20] != '-') return std::nullopt;
  std::int64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (file[i] < '0' || file[i] > '9') return std::nullopt;
    if (v > (INT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + (file[i] - '0');
  }
  std::string name(file.substr(21));
  if (!archive::ClassifyName(name).ok()) return std::nullopt;
  return std::make_pair(v, name);
}

std::string EntryFileName(std::int64_t ns, const std::string& name) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020lld-", static_cast<long long>(ns));
  return buf + name;
}

Result<std::vector<std::string>> ListDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoError(errno, "open backlog directory " + dir);
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status WriteFileDurable(const std::string& dir, const std::string& name, const std::string& content) {
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return ErrnoError(errno, "open backlog directory " + dir);
  UniqueFd guard(dfd);
  return WriteAtomic(PosixFs(), dfd, name, content, 0600, Replace::kYes, dir + "/" + name);
}

Status MakeDir0700(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  if (errno == ENOENT) {
    std::string parent = DirName(dir);
    if (parent != dir && !parent.empty()) {
      WF_TRY(MakeDir0700(parent));
      if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
    }
  }
  return ErrnoError(errno, "create backlog directory " + dir);
}

Status CheckOwnDir(const std::string& dir) {
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) return ErrnoError(errno, "backlog directory " + dir);
  if (S_ISLNK(st.st_mode)) return Error(ErrorCode::kRefused, "backlog directory " + dir + " is a symlink");
  if (!S_ISDIR(st.st_mode)) return Error(ErrorCode::kRefused, "backlog path " + dir + " is not a directory");
  if (st.st_uid != ::geteuid()) {
    return Error(ErrorCode::kRefused, "backlog directory " + dir + " belongs to uid " + std::to_string(st.st_uid) +
                                          ", not to this user (uid " + std::to_string(::geteuid()) + ")");
  }
  if ((st.st_mode & 077) != 0) {
    return Error(ErrorCode::kRefused, "backlog directory " + dir + " is open to group/other (chmod 700 it)");
  }
  return Status::Ok();
}

}  // namespace

std::string FormatBacklogEntry(const BacklogEntry& e) {
  std::string body(kEntryMagic);
  body += "target " + e.target + "\n";
  body += "name " + e.name + "\n";
  body += "source " + e.source + "\n";
  body += "added " + std::to_string(e.added_ns) + "\n";
  return WithCheck(std::move(body));
}

std::optional<BacklogEntry> ParseBacklogEntry(std::string_view text) {
  auto fields = ParseChecked(text, kEntryMagic);
  if (!fields || fields->size() != 4) return std::nullopt;
  const auto& f = *fields;
  if (f[0].first != "target" || f[1].first != "name" || f[2].first != "source" || f[3].first != "added") {
    return std::nullopt;
  }
  BacklogEntry e;
  e.target = f[0].second;
  e.name = f[1].second;
  e.source = f[2].second;
  if (e.target.empty() || !archive::ClassifyName(e.name).ok() || !ParseInt(f[3].second, &e.added_ns)) {
    return std::nullopt;
  }
  if (!e.source.empty() && e.source[0] != '/') return std::nullopt;
  return e;
}

std::string FormatTargetState(const TargetState& s) {
  std::string body(kStateMagic);
  body += "target " + s.target + "\n";
  body += "last_ok " + std::to_string(s.last_ok) + "\n";
  body += "last_fail " + std::to_string(s.last_fail) + "\n";
  std::string err;
  for (char c : s.last_error) err += (c == '\n' || c == '\r' || c == '\0') ? ' ' : c;
  if (err.size() > 1000) err.resize(1000);
  body += "last_error " + err + "\n";
  return WithCheck(std::move(body));
}

std::optional<TargetState> ParseTargetState(std::string_view text) {
  auto fields = ParseChecked(text, kStateMagic);
  if (!fields || fields->size() != 4) return std::nullopt;
  const auto& f = *fields;
  if (f[0].first != "target" || f[1].first != "last_ok" || f[2].first != "last_fail" || f[3].first != "last_error") {
    return std::nullopt;
  }
  TargetState s;
  s.target = f[0].second;
  s.last_error = f[3].second;
  if (s.target.empty() || !ParseInt(f[1].second, &s.last_ok) || !ParseInt(f[2].second, &s.last_fail)) {
    return std::nullopt;
  }
  return s;
}

std::string TargetKey(std::string_view target) {
  std::string out;
  for (char c : target) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    out += ok ? c : '_';
  }
  if (out.size() > 180) out.resize(180);
  char buf[10];
  std::snprintf(buf, sizeof buf, "-%08x",
                static_cast<unsigned>(Xxh3_64(std::as_bytes(std::span(target.data(), target.size()))) & 0xffffffffu));
  if (!out.empty() && out[0] == '.') out[0] = '_';
  return out + buf;
}

std::string DefaultBacklogDir(const std::string& tls_dir) {
  if (!tls_dir.empty()) {
    std::string t = tls_dir;
    while (t.size() > 1 && t.back() == '/') t.pop_back();
    auto abs = AbsolutePath(t);
    return DirName(abs.ok() ? *abs : t) + "/walferry-backlog";
  }
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x == '/') return std::string(x) + "/walferry/backlog";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/walferry/backlog";
}

Result<Backlog> Backlog::Open(const std::string& dir, std::size_t max_entries) {
  if (dir.empty()) return Error(ErrorCode::kInvalidArgument, "no backlog directory");
  struct stat st{};
  if (::lstat(dir.c_str(), &st) != 0) WF_TRY(MakeDir0700(dir));
  WF_TRY(CheckOwnDir(dir));
  return Backlog(dir, std::max<std::size_t>(1, max_entries), /*read_only=*/false);
}

Result<Backlog> Backlog::OpenForReading(const std::string& dir) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) return ErrnoError(errno, "backlog directory " + dir);
  if (!S_ISDIR(st.st_mode)) return Error(ErrorCode::kInvalidArgument, "backlog path " + dir + " is not a directory");
  return Backlog(dir, kDefaultBacklogMax, /*read_only=*/true);
}

Result<std::string> Backlog::TargetDir(const std::string& target, bool create) const {
  if (target.empty() || !SafeLine(target)) return Error(ErrorCode::kInvalidArgument, "bad target name");
  std::string d = dir_ + "/" + TargetKey(target);
  struct stat st{};
  if (read_only_ && create) return Error(ErrorCode::kInvalidArgument, "backlog opened for reading");
  if (::lstat(d.c_str(), &st) != 0) {
    if (!create) return Error(ErrorCode::kNotFound, "no backlog for " + target);
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError(errno, "create " + d);
    TargetState s;
    s.target = target;
    WF_TRY(WriteFileDurable(d, kStateFile, FormatTargetState(s)));
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      UniqueFd g(dfd);
      WF_TRY(FsyncDir(PosixFs(), dfd, dir_));
    }
  }
  if (!read_only_) WF_TRY(CheckOwnDir(d));
  return d;
}

Status Backlog::Add(const std::string& target, const std::string& name, const std::string& source) {
  if (!archive::ClassifyName(name).ok()) return Error(ErrorCode::kInvalidArgument, "backlog: bad name " + name);
  if (!SafeLine(source) || (!source.empty() && source[0] != '/')) {
    return Error(ErrorCode::kInvalidArgument, "backlog: source must be an absolute path");
  }
  WF_ASSIGN(std::string d, TargetDir(target, /*create=*/true));
  WF_ASSIGN(std::vector<BacklogEntry> have, Entries(target));
  for (const auto& e : have) {
    if (e.name == name) return Status::Ok();
  }
  if (have.size() >= max_) {
    return Error(ErrorCode::kNoSpace, "backlog of " + target + " full (" + std::to_string(have.size()) +
                                          " entries in " + d + ", --backlog-max " + std::to_string(max_) +
                                          "): bring the target back or remove it from --to");
  }
  BacklogEntry e;
  e.target = target;
  e.name = name;
  e.source = source;
  e.added_ns = NowNs();
  return WriteFileDurable(d, EntryFileName(e.added_ns, name), FormatBacklogEntry(e));
}

Result<std::vector<BacklogEntry>> Backlog::Entries(const std::string& target) const {
  auto d = TargetDir(target, /*create=*/false);
  if (!d.ok()) {
    if (d.error().code() == ErrorCode::kNotFound) return std::vector<BacklogEntry>{};
    return d.error();
  }
  WF_ASSIGN(std::vector<std::string> files, ListDir(*d));
  std::vector<BacklogEntry> out;
  for (const auto& f : files) {
    if (f == kStateFile) continue;
    if (f[0] == '.') {
      // A temp file of WriteAtomic left by a crash: never an entry.
      if (!read_only_ && (f.ends_with(".wftmp") || f.ends_with(".tmp"))) ::unlinkat(AT_FDCWD, (*d + "/" + f).c_str(), 0);
      continue;
    }
    auto split = SplitEntryFile(f);
    if (!split) continue;
    auto text = ReadSmallFile(*d + "/" + f, kMaxEntryText + 1);
    std::optional<BacklogEntry> e;
    if (text.ok()) e = ParseBacklogEntry(*text);
    if (!e || e->name != split->second || e->target != target) {
      BacklogEntry r;
      r.target = target;
      r.name = split->second;
      r.added_ns = split->first;
      r.repaired = true;
      // Rewrite it well-formed (best effort: the entry counts either way).
      if (!read_only_) (void)WriteFileDurable(*d, f, FormatBacklogEntry(r));
      e = r;
    }
    e->file = f;
    out.push_back(std::move(*e));
  }
  return out;
}

Status Backlog::Remove(const BacklogEntry& e) const {
  if (read_only_) return Error(ErrorCode::kInvalidArgument, "backlog opened for reading");
  WF_ASSIGN(std::string d, TargetDir(e.target, /*create=*/false));
  if (e.file.empty() || e.file.find('/') != std::string::npos || e.file[0] == '.') {
    return Error(ErrorCode::kInvalidArgument, "backlog: bad entry file");
  }
  if (::unlink((d + "/" + e.file).c_str()) != 0 && errno != ENOENT) {
    return ErrnoError(errno, "remove backlog entry " + d + "/" + e.file);
  }
  int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return ErrnoError(errno, "open " + d);
  UniqueFd g(dfd);
  return FsyncDir(PosixFs(), dfd, d);
}

Result<std::vector<std::string>> Backlog::Targets() const {
  WF_ASSIGN(std::vector<std::string> dirs, ListDir(dir_));
  std::vector<std::string> out;
  for (const auto& k : dirs) {
    if (k[0] == '.') continue;
    auto text = ReadSmallFile(dir_ + "/" + k + "/" + kStateFile, kMaxEntryText + 1);
    if (!text.ok()) continue;
    auto s = ParseTargetState(*text);
    if (s && TargetKey(s->target) == k) out.push_back(s->target);
  }
  std::sort(out.begin(), out.end());
  return out;
}

void Backlog::RecordResult(const std::string& target, bool ok, const std::string& error) const {
  if (read_only_) return;
  auto d = TargetDir(target, /*create=*/true);
  if (!d.ok()) return;
  TargetState s = State(target).value_or(TargetState{});
  s.target = target;
  const std::int64_t now = static_cast<std::int64_t>(::time(nullptr));
  if (ok) {
    s.last_ok = now;
  } else {
    s.last_fail = now;
    s.last_error = error;
  }
  // Status only: not fsynced (a lost update costs an old "last answer" line).
  std::string tmp = *d + "/.state." + std::to_string(::getpid()) + ".tmp";
  std::string text = FormatTargetState(s);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return;
  UniqueFd g(fd);
  if (!WriteFull(fd, std::as_bytes(std::span(text.data(), text.size())), tmp).ok() ||
      ::rename(tmp.c_str(), (*d + "/" + kStateFile).c_str()) != 0) {
    ::unlink(tmp.c_str());
  }
}

std::optional<TargetState> Backlog::State(const std::string& target) const {
  auto text = ReadSmallFile(dir_ + "/" + TargetKey(target) + "/" + kStateFile, kMaxEntryText + 1);
  if (!text.ok()) return std::nullopt;
  auto s = ParseTargetState(*text);
  if (!s || s->target != target) return std::nullopt;
  return s;
}

}  // namespace walferry::pg
