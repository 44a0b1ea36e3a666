// The workers: each owns one transport::Sender (a persistent connection) and
// ships requested files first, then read-ahead in archiver order.
#include <sys/stat.h>

#include "agent/agent_internal.h"

namespace walferry::agent::internal {

using std::chrono::milliseconds;

std::string AgentImpl::Take(std::unique_lock<std::mutex>& lk) {
  for (;;) {
    if (stop_.load()) return "";
    while (!priority_.empty()) {
      std::string n = priority_.front();
      priority_.pop_front();
      auto it = entries_.find(n);
      if (it != entries_.end() && it->second.state == State::kQueued) {
        it->second.state = State::kInFlight;
        return n;
      }
    }
    auto now = Clock::now();
    std::string best;
    Clock::time_point next_retry = Clock::time_point::max();
    for (auto& [n, e] : entries_) {
      bool eligible = e.state == State::kQueued ||
                      (e.state == State::kFailed && !e.requested && now - e.failed_at >= o_.retry);
      if (e.state == State::kFailed && !e.requested) next_retry = std::min(next_retry, e.failed_at + o_.retry);
      if (eligible && (best.empty() || ArchiveOrder(n, best))) best = n;
    }
    if (!best.empty()) {
      entries_[best].state = State::kInFlight;
      return best;
    }
    if (next_retry == Clock::time_point::max()) {
      cv_.wait(lk);
    } else {
      cv_.wait_until(lk, next_retry);
    }
  }
}

void AgentImpl::Worker() {
  transport::SendOptions so = o_.send;
  transport::Sender sender(std::move(so));
  std::unique_lock lk(mu_);
  for (;;) {
    std::string name = Take(lk);
    if (name.empty()) return;
    std::string path = entries_[name].path;
    bool requested = entries_[name].requested;
    lk.unlock();
    Result<transport::SendResult> r = Error(ErrorCode::kInternal, "not sent");
    struct stat st{};
    bool gone = !requested && ::stat((status_dir_ + "/" + name + ".ready").c_str(), &st) != 0;
    const auto t0 = Clock::now();
    if (!gone) r = sender.SendFile(path, name);
    if (!gone && r.ok()) {
      const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
      Log("agent: name=" + name + (r->outcome == transport::WireOutcome::kIdentical ? " identical" : " placed") +
          " bytes=" + std::to_string(r->raw_bytes) + " wire=" + std::to_string(r->wire_bytes) +
          " ms=" + std::to_string(ms) +
          (requested ? " requested" : " ahead"));
    }
    lk.lock();
    Record(name, gone, r, lk);
    cv_.notify_all();
  }
}

void AgentImpl::Record(const std::string& name, bool gone, const Result<transport::SendResult>& r,
                       std::unique_lock<std::mutex>& lk) {
  Entry& e = entries_[name];
  ++e.done;
  if (gone) {
    e.state = State::kFailed;  // not requested and no .ready: the next scan forgets it
    e.failed_at = Clock::now();
    e.error = "no longer ready";
    e.error_code = ErrorCode::kNotFound;
  } else if (r.ok()) {
    e.state = State::kDurable;
    e.shipped = FileId{r->raw_bytes, r->hash};
    e.outcome = r->outcome;
    e.requested = false;
    ++stats_.shipped_files;
    stats_.shipped_bytes += r->raw_bytes;
    stats_.last_success_epoch = NowEpoch();
  } else {
    e.state = State::kFailed;
    e.failed_at = Clock::now();
    e.error = r.error().message();
    e.error_code = r.error().code();
    e.requested = false;
    bool vanished = r.error().code() == ErrorCode::kNotFound;
    if (!vanished) {
      ++stats_.failures;
      stats_.last_failure_epoch = NowEpoch();
      stats_.last_error = name + ": " + e.error;
      std::string msg = "agent: " + name + ": " + e.error;
      lk.unlock();
      Log(msg, true);
      lk.lock();
    }
  }
}

}  // namespace walferry::agent::internal
