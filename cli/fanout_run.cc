#include "cli/fanout_run.h"

#include <cstdio>
#include <memory>
#include <mutex>

#include "cli/s3_options.h"

namespace walferry::cli {

Result<pg::FanoutOptions> BuildFanout(const ClientArgs& a, const std::vector<std::string>& targets,
                                      const std::function<void(transport::SendOptions&)>& tune,
                                      std::unique_ptr<pg::Backlog>* backlog) {
  pg::FanoutOptions o;
  for (const auto& t : targets) {
    if (IsS3Url(t)) {
      return Error(ErrorCode::kUnsupported, "--to " + t +
                                                ": a bucket as a fan-out target is not built yet; put a gateway "
                                                "receiver (walferry serve --store-url) in front of it");
    }
    pg::FanoutTarget ft;
    ft.name = t;
    WF_ASSIGN(ft.send, ClientOptionsFor(a, t));
    if (tune) tune(ft.send);
    WF_ASSIGN(ft.fetch, ClientFetchSpec(a, t));
    o.targets.push_back(std::move(ft));
  }
  if (a.quorum > targets.size()) {
    return Error(ErrorCode::kInvalidArgument, "--quorum " + std::to_string(a.quorum) + " is more than the " +
                                                  std::to_string(targets.size()) + " targets given by --to");
  }
  o.quorum = a.quorum;
  o.drain_max = a.drain_max;
  const std::string dir = a.backlog_dir.empty() ? pg::DefaultBacklogDir(a.tls_dir) : a.backlog_dir;
  WF_ASSIGN(pg::Backlog b, pg::Backlog::Open(dir, a.backlog_max));
  *backlog = std::make_unique<pg::Backlog>(std::move(b));
  o.backlog = backlog->get();
  auto mu = std::make_shared<std::mutex>();
  o.note = [mu](const std::string& m) {
    std::lock_guard lk(*mu);
    std::fprintf(stderr, "walferry: %s\n", m.c_str());
  };
  return o;
}

Status RunFanout(const ClientArgs& a, const std::vector<std::string>& targets,
                 const std::function<void(transport::SendOptions&)>& tune, const std::string& path,
                 const std::string& name, const std::string& wal_dir, const std::string& who) {
  std::unique_ptr<pg::Backlog> backlog;
  WF_ASSIGN(pg::FanoutOptions o, BuildFanout(a, targets, tune, &backlog));
  o.wal_dir = wal_dir;
  pg::FanoutResult r;
  Status st = pg::FanoutSendFile(o, path, name, &r);
  for (const auto& t : r.targets) {
    if (t.drained > 0) {
      std::fprintf(stderr, "walferry: %s: caught up %zu backlog file(s) on %s\n", who.c_str(), t.drained,
                   t.target.c_str());
    }
  }
  return st;
}

}  // namespace walferry::cli
