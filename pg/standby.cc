#include "pg/standby.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <filesystem>
#include <functional>

#include "core/fd.h"
#include "pg/process.h"
#include "pg/version.h"

namespace walferry::pg {
namespace {

namespace fs = std::filesystem;

bool Exists(const std::string& p) {
  struct stat st{};
  return ::lstat(p.c_str(), &st) == 0;
}

// True when PGDATA/postmaster.pid names a live process.
bool ServerRunning(const std::string& pgdata) {
  auto pid_text = ReadSmallFile(pgdata + "/postmaster.pid", 4096);
  if (!pid_text.ok()) return false;
  long pid = std::atol(pid_text->c_str());
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

Status WriteFileAtomically(const std::string& path, std::string_view content, mode_t mode,
                           const struct stat* like) {
  WF_ASSIGN(auto f, AtomicFile::Create(path, /*overwrite=*/true, mode));
  if (like) {
    if (::fchmod(f->fd(), like->st_mode & 07777) != 0) return ErrnoError(errno, "chmod " + path);
    if (::geteuid() == 0 && ::fchown(f->fd(), like->st_uid, like->st_gid) != 0) {
      return ErrnoError(errno, "chown " + path);
    }
  }
  WF_TRY(f->Write(std::as_bytes(std::span(content.data(), content.size()))));
  return f->Commit();
}

std::string Timestamp() {
  char buf[32];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

Status PrepareEmptyDataDir(const std::string& pgdata, bool force) {
  std::error_code ec;
  if (!Exists(pgdata)) {
    fs::create_directories(pgdata, ec);
    if (ec) return ErrnoError(ec.value(), "mkdir " + pgdata);
  } else {
    if (!fs::is_directory(pgdata, ec)) {
      return Error(ErrorCode::kInvalidArgument, pgdata + " is not a directory");
    }
    bool empty = fs::is_empty(pgdata, ec);
    if (ec) return ErrnoError(ec.value(), "read " + pgdata);
    if (!empty) {
      if (!force) {
        return Error(ErrorCode::kExists,
                     pgdata + " is not empty; refusing to restore over it (stop the server and use "
                              "--force to replace its contents)");
      }
      if (ServerRunning(pgdata)) {
        return Error(ErrorCode::kRefused,
                     "a PostgreSQL server is running in " + pgdata + "; stop it first");
      }
      for (const auto& e : fs::directory_iterator(pgdata, ec)) {
        fs::remove_all(e.path(), ec);
        if (ec) return ErrnoError(ec.value(), "remove " + e.path().string());
      }
      if (ec) return ErrnoError(ec.value(), "read " + pgdata);
    }
  }
  if (::chmod(pgdata.c_str(), 0700) != 0) return ErrnoError(errno, "chmod " + pgdata);
  return Status::Ok();
}

Status UnpackTar(const std::string& pgdata, const std::function<Status(ByteSink&)>& read_into) {
  Status result = [&]() -> Status {
    WF_ASSIGN(Child tar, Child::Spawn({"tar", "-x", "-C", pgdata, "-f", "-"},
                                      Child::PipeEnd::kToChild));
    auto sink = FdSink(tar.fd(), "tar");
    Status st = read_into(*sink);
    WF_ASSIGN(int rc, tar.Wait());
    if (!st.ok()) return st;
    if (rc != 0) {
      return Error(ErrorCode::kCorrupt,
                   "tar -x failed (exit " + std::to_string(rc) + ") unpacking into " + pgdata);
    }
    return Status::Ok();
  }();
  return result;
}

std::map<std::string, std::string> CurrentSettings(const std::string& pgdata) {
  std::map<std::string, std::string> m;
  for (const char* f : {"/postgresql.conf", "/postgresql.auto.conf"}) {
    auto text = ReadSmallFile(pgdata + f);
    if (!text.ok()) continue;
    for (auto& [k, v] : ParseConf(*text)) m[k] = v;
  }
  return m;
}

Result<StandbyWriteResult> WriteStandbyConfig(const std::string& pgdata, StandbyOptions options) {
  WF_ASSIGN(int major, DetectMajorVersion(pgdata));
  WF_TRY(CheckSupported(major));
  options.major = major;
  WF_ASSIGN(StandbyConfig cfg, MakeStandbyConfig(options));
  StandbyWriteResult r;
  r.major = major;
  struct stat dir_st{};
  if (::stat(pgdata.c_str(), &dir_st) != 0) return ErrnoError(errno, "stat " + pgdata);
  const std::string auto_conf = pgdata + "/postgresql.auto.conf";
  std::string existing;
  struct stat like{};
  bool have_like = false;
  if (auto t = ReadSmallFile(auto_conf); t.ok()) {
    existing = std::move(t).value();
    have_like = ::stat(auto_conf.c_str(), &like) == 0;
  }
  WF_ASSIGN(std::string edited, EditConf(existing, cfg.auto_conf, cfg.auto_conf_remove));
  WF_TRY(WriteFileAtomically(auto_conf, edited, 0600, have_like ? &like : nullptr));
  r.files.push_back("postgresql.auto.conf");
  // Files we create belong to the data directory's owner (restore as root).
  struct stat owner = dir_st;
  owner.st_mode = S_IFREG | 0600;
  if (major <= 11) {
    WF_TRY(WriteFileAtomically(pgdata + "/recovery.conf", cfg.recovery_conf, 0600, &owner));
    r.files.push_back("recovery.conf");
  } else {
    ::unlink((pgdata + "/recovery.conf").c_str());
    WF_TRY(WriteFileAtomically(pgdata + "/standby.signal", "", 0600, &owner));
    r.files.push_back("standby.signal");
  }
  if (::chmod(pgdata.c_str(), 0700) != 0) return ErrnoError(errno, "chmod " + pgdata);
  return r;
}

Result<ApplyResult> ApplyPrimaryConfig(const std::string& pgdata, const std::vector<Setting>& settings,
                                       const std::string& hba_line, const std::string& hba_file) {
  ApplyResult r;
  const std::string stamp = Timestamp();
  auto backup = [&](const std::string& path, const std::string& content,
                    const struct stat& st) -> Status {
    std::string copy = path + ".walferry-" + stamp;
    WF_TRY(WriteFileAtomically(copy, content, 0600, &st));
    r.backups.push_back(copy);
    return Status::Ok();
  };
  {
    const std::string path = pgdata + "/postgresql.auto.conf";
    std::string existing;
    struct stat st{};
    bool have = false;
    if (auto t = ReadSmallFile(path); t.ok()) {
      existing = std::move(t).value();
      have = ::stat(path.c_str(), &st) == 0;
    } else if (t.error().code() != ErrorCode::kNotFound) {
      return t.error();
    }
    WF_ASSIGN(std::string edited, EditConf(existing, settings));
    if (edited != existing) {
      if (have) WF_TRY(backup(path, existing, st));
      struct stat dir_st{};
      if (!have && ::stat(pgdata.c_str(), &dir_st) == 0) {
        st = dir_st;
        st.st_mode = S_IFREG | 0600;
        have = true;
      }
      WF_TRY(WriteFileAtomically(path, edited, 0600, have ? &st : nullptr));
      r.changed.push_back(path);
    }
  }
  if (!hba_line.empty()) {
    WF_ASSIGN(std::string existing, ReadSmallFile(hba_file));
    if (!HbaHasLine(existing, hba_line)) {
      struct stat st{};
      if (::stat(hba_file.c_str(), &st) != 0) return ErrnoError(errno, "stat " + hba_file);
      WF_TRY(backup(hba_file, existing, st));
      std::string edited = existing;
      if (!edited.empty() && edited.back() != '\n') edited += '\n';
      edited += "# standby replication, added by walferry setup primary\n" + hba_line + "\n";
      WF_TRY(WriteFileAtomically(hba_file, edited, 0600, &st));
      r.changed.push_back(hba_file);
    }
  }
  return r;
}

Status Promote(const std::string& pgdata, const std::string& pgbin, int wait_seconds) {
  WF_ASSIGN(int major, DetectMajorVersion(pgdata));
  WF_TRY(CheckSupported(major));
  if (!Exists(pgdata + "/standby.signal") && !Exists(pgdata + "/recovery.conf")) {
    return Error(ErrorCode::kInvalidArgument,
                 pgdata + " is not a standby (no standby.signal or recovery.conf)");
  }
  std::string pg_ctl = FindPgProgram("pg_ctl", major, pgbin);
  WF_ASSIGN(RunResult r, Run({pg_ctl, "promote", "-D", pgdata, "-w", "-t",
                              std::to_string(wait_seconds)}));
  if (r.exit_code != 0) {
    std::string msg = r.err.empty() ? r.out : r.err;
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    if (auto nl = msg.rfind('\n'); nl != std::string::npos) msg = msg.substr(nl + 1);
    return Error(ErrorCode::kIo, "pg_ctl promote failed: " + msg);
  }
  return Status::Ok();
}

}  // namespace walferry::pg
