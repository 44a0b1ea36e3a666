#include "pg/fanout.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "core/fd.h"
#include "core/path.h"
#include "core/thread_pool.h"

namespace walferry::pg {
namespace {

using Clock = std::chrono::steady_clock;

// The error prefixed with the target, unless its message names it already.
Error Named(const Error& e, const std::string& target) {
  return e.message().find(target) != std::string::npos ? e : e.Wrap(target);
}

bool Exists(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// A spooled copy of an entry read from a peer; removed by the destructor.
class Spool {
 public:
  ~Spool() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // Reads `name` from the first peer (other than `self`) that has it.
  Status Fetch(const FanoutOptions& o, std::size_t self, const std::string& name) {
    const std::string dir = o.spool_dir.empty() ? o.backlog->dir() : o.spool_dir;
    Error last(ErrorCode::kNotFound, name + " is gone from its source and no other target holds it");
    for (std::size_t i = 0; i < o.targets.size(); ++i) {
      if (i == self || !o.targets[i].fetch) continue;
      std::string p = dir + "/.fetch-" + name + "." + std::to_string(::getpid()) + "." + std::to_string(self);
      int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0) return ErrnoError(errno, "create " + p);
      path_ = p;
      UniqueFd guard(fd);
      auto sink = FdSink(fd, p);
      auto src = RemoteSource(*o.targets[i].fetch);
      Status st = src->Read(name, *sink);
      if (st.ok()) return Status::Ok();
      ::unlink(p.c_str());
      path_.clear();
      if (st.error().code() != ErrorCode::kNotFound) last = st.error().Wrap("fetch from " + o.targets[i].name);
    }
    return last;
  }

 private:
  std::string path_;
};

// Ships what `t` still lacks, oldest first, within the bounds. Returns false
// when the target proved unreachable (the caller then skips it).
bool DrainOne(const FanoutOptions& o, std::size_t self, transport::Sender& sender, TargetOutcome& out) {
  const FanoutTarget& t = o.targets[self];
  auto entries = o.backlog->Entries(t.name);
  if (!entries.ok()) {
    if (o.note) o.note("backlog of " + t.name + ": " + entries.error().message());
    return true;
  }
  const auto deadline = Clock::now() + o.drain_time;
  std::size_t tried = 0;
  for (const BacklogEntry& e : *entries) {
    if (tried >= o.drain_max || Clock::now() >= deadline) break;
    ++tried;
    std::string path = e.source;
    if (path.empty() && !o.wal_dir.empty()) path = o.wal_dir + "/" + e.name;
    Spool spool;
    if (path.empty() || !Exists(path)) {
      // Recycled by PostgreSQL (or never known): read it from a target that holds it.
      Status f = spool.Fetch(o, self, e.name);
      if (!f.ok()) {
        ++out.drain_failed;
        if (o.note) o.note("backlog " + t.name + ": " + e.name + ": " + f.error().message() + " (entry kept)");
        continue;
      }
      path = spool.path();
    }
    auto r = sender.SendFile(path, e.name);
    if (r.ok()) {
      o.backlog->RecordResult(t.name, true, "");
      Status rm = o.backlog->Remove(e);
      if (!rm.ok() && o.note) o.note("backlog " + t.name + ": " + rm.error().message());
      ++out.drained;
      continue;
    }
    ++out.drain_failed;
    const Error& err = r.error();
    if (err.code() == ErrorCode::kNetwork || err.code() == ErrorCode::kAuth) {
      o.backlog->RecordResult(t.name, false, err.message());
      out.error = Named(err, t.name);
      return false;
    }
    // A conflict or a refusal is the operator's to see: loud, entry kept
    // (status shows it and --check fails once it is older than the limit).
    if (o.note) {
      o.note(std::string(err.code() == ErrorCode::kExistsDifferent ? "CONFLICT: " : "") + "backlog " + t.name +
             ": " + e.name + ": " + err.message() + " (entry kept)");
    }
  }
  return true;
}

transport::SendOptions Copy(const transport::SendOptions& s) { return s; }

// On a pool worker: the backlog of target `self`, then the file itself.
void SendOne(const FanoutOptions& o, std::size_t self, const std::string& path, const std::string& name,
             TargetOutcome& out) {
  transport::Sender sender(Copy(o.targets[self].send));
  if (!DrainOne(o, self, sender, out)) return;  // unreachable: out.error says why
  auto r = sender.SendFile(path, name);
  if (r.ok()) {
    out.durable = true;
    out.error.reset();
    out.outcome = r->outcome;
    o.backlog->RecordResult(o.targets[self].name, true, "");
  } else {
    out.error = Named(r.error(), o.targets[self].name);
    o.backlog->RecordResult(o.targets[self].name, false, r.error().message());
  }
}


}  // namespace

FanoutResult DrainBacklogs(const FanoutOptions& o) {
  FanoutResult res;
  if (o.targets.empty()) return res;
  res.targets.resize(o.targets.size());
  {
    // One worker per target, so a slow target never delays another; the
    // destructor joins them all. Each task reports in its own res.targets[i].
    ThreadPool pool(o.targets.size(), o.targets.size());
    for (std::size_t i = 0; i < o.targets.size(); ++i) {
      res.targets[i].target = o.targets[i].name;
      pool.Submit([&o, &res, i](std::size_t) {
        transport::Sender sender(Copy(o.targets[i].send));
        res.targets[i].durable = DrainOne(o, i, sender, res.targets[i]);
      });
    }
  }
  return res;
}

Status FanoutSendFile(const FanoutOptions& o, const std::string& path, const std::string& name,
                      FanoutResult* result) {
  if (o.targets.empty() || !o.backlog) return Error(ErrorCode::kInvalidArgument, "fan-out needs targets and a backlog");
  const std::size_t quorum = o.quorum == 0 ? o.targets.size() : o.quorum;
  if (quorum > o.targets.size()) {
    return Error(ErrorCode::kInvalidArgument, "--quorum " + std::to_string(quorum) + " is more than the " +
                                                  std::to_string(o.targets.size()) + " targets");
  }
  FanoutResult local;
  FanoutResult& res = result ? *result : local;
  res = FanoutResult{};
  res.targets.resize(o.targets.size());
  {
    ThreadPool pool(o.targets.size(), o.targets.size());  // one worker per target, joined here
    for (std::size_t i = 0; i < o.targets.size(); ++i) {
      res.targets[i].target = o.targets[i].name;
      pool.Submit([&o, &res, &path, &name, i](std::size_t) { SendOne(o, i, path, name, res.targets[i]); });
    }
  }

  std::optional<Error> conflict, first;
  for (const auto& t : res.targets) {
    if (t.durable) {
      ++res.durable;
      continue;
    }
    if (t.error && t.error->code() == ErrorCode::kExistsDifferent && !conflict) conflict = *t.error;
    if (t.error && !first) first = *t.error;
  }
  if (conflict) return conflict->Wrap("conflict (never hidden by the quorum)");
  const std::string tally = std::to_string(res.durable) + " of " + std::to_string(o.targets.size()) +
                            " targets durable, quorum " + std::to_string(quorum);
  if (res.durable < quorum) {
    Error e = first ? *first : Error(ErrorCode::kInternal, "no target answered");
    return Error(e.code(), tally + "; " + e.message());
  }
  // Quorum met: each target that missed the file must have it recorded.
  std::string abs = path;
  if (auto a = AbsolutePath(path); a.ok()) abs = *a;
  for (const auto& t : res.targets) {
    if (t.durable) continue;
    Status add = o.backlog->Add(t.target, name, abs);
    if (!add.ok()) return add.error().Wrap(tally + " but the backlog refused " + name);
    if (o.note) o.note(name + ": " + t.target + " missed it (" + (t.error ? t.error->message() : "?") +
                       "); listed in its backlog");
  }
  return Status::Ok();
}

}  // namespace walferry::pg
