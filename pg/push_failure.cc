#include "pg/push_failure.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "core/fd.h"

namespace walferry::pg {
namespace {

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Only a WAL file in a pg_wal directory (as archive_command's %p) is recorded.
bool InPgWal(const std::string& wal_path) {
  std::string dir = DirOf(wal_path);
  return BaseOf(dir) == "pg_wal";
}

}  // namespace

Status RecordPushFailure(const std::string& wal_path, const std::string& reason) {
  if (!InPgWal(wal_path)) return Status::Ok();
  const std::string dir = DirOf(wal_path);
  const std::string final_path = dir + "/" + kPushFailureFile;
  const std::string tmp = final_path + ".tmp" + std::to_string(::getpid());
  std::string line = std::to_string(static_cast<long long>(std::time(nullptr))) + " " + BaseOf(wal_path) + " ";
  for (char c : reason) line += (c == '\n' || c == '\r') ? ' ' : c;
  line += "\n";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoError(errno, "create " + tmp);
  UniqueFd guard(fd);
  Status w = WriteFull(fd, std::as_bytes(std::span(line.data(), line.size())), tmp);
  if (!w.ok()) {
    ::unlink(tmp.c_str());
    return w;
  }
  if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(e, "rename " + tmp);
  }
  return Status::Ok();
}

void ClearPushFailure(const std::string& wal_path) {
  if (!InPgWal(wal_path)) return;
  const std::string p = DirOf(wal_path) + "/" + kPushFailureFile;
  ::unlink(p.c_str());
}

std::optional<PushFailure> ReadPushFailure(const std::string& pgdata) {
  auto text = ReadSmallFile(pgdata + "/pg_wal/" + kPushFailureFile, 64 * 1024);
  if (!text.ok()) return std::nullopt;
  const std::string& t = *text;
  auto sp1 = t.find(' ');
  if (sp1 == std::string::npos) return std::nullopt;
  auto sp2 = t.find(' ', sp1 + 1);
  if (sp2 == std::string::npos) return std::nullopt;
  PushFailure f;
  f.when = static_cast<std::time_t>(std::strtoll(t.substr(0, sp1).c_str(), nullptr, 10));
  f.name = t.substr(sp1 + 1, sp2 - sp1 - 1);
  f.reason = t.substr(sp2 + 1);
  while (!f.reason.empty() && (f.reason.back() == '\n' || f.reason.back() == ' ')) f.reason.pop_back();
  return f;
}

}  // namespace walferry::pg
