// The receiver's server: the accept loop, the per-connection threads and
// their deadline watchdog, the recycled buffers, the per-cluster claims and
// temp-space caps. One connection's protocol is Server::Session
// (transport/session_internal.h, session*.cc).
#include "transport/server.h"

#include <cstdio>
#include <vector>

#include "transport/session_internal.h"

namespace walferry::transport {
namespace {

std::string Seconds(std::chrono::milliseconds t) {
  if (t.count() % 1000 == 0) return std::to_string(t.count() / 1000) + " s";
  return std::to_string(t.count()) + " ms";
}

}  // namespace

std::unique_ptr<Server::Buffers> Server::TakeBuffers() {
  std::lock_guard lk(mu_);
  if (spare_buffers_.empty()) return std::make_unique<Buffers>();
  auto b = std::move(spare_buffers_.back());
  spare_buffers_.pop_back();
  return b;
}

void Server::GiveBuffers(std::unique_ptr<Buffers> b) {
  {
    std::lock_guard lk(mu_);
    // Kept (with their share of the budget) unless someone waits for memory.
    if (spare_buffers_.size() < 8 && budget_->waiters() == 0) {
      spare_buffers_.push_back(std::move(b));
      return;
    }
  }
  std::uint64_t leased = b->leased;
  b.reset();
  budget_->Release(leased);
}

bool Server::DropSpareBuffers() {
  std::unique_ptr<Buffers> b;
  {
    std::lock_guard lk(mu_);
    if (spare_buffers_.empty()) return false;
    b = std::move(spare_buffers_.back());
    spare_buffers_.pop_back();
  }
  std::uint64_t leased = b->leased;
  b.reset();
  budget_->Release(leased);
  return true;
}

Server::Server(store::Store& store, ServerOptions options)
    : store_(store),
      opts_(std::move(options)),
      budget_(std::make_unique<BufferBudget>(opts_.max_buffer_bytes > 0 ? opts_.max_buffer_bytes
                                                                        : DefaultBufferBudget(opts_.max_connections))) {}

Server::~Server() { Stop(); }

void Server::Log(const std::string& line) {
  if (opts_.log) {
    opts_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

Status Server::Claim(const std::string& cluster, const std::string& key, const std::string& id, Conn* conn) {
  std::unique_lock lk(mu_);
  auto it = claimed_.find(key);
  if (it == claimed_.end() && opts_.max_transfers_per_cluster > 0) {
    const std::string prefix = cluster + "/";
    std::size_t n = 0;
    for (auto c = claimed_.lower_bound(prefix); c != claimed_.end() && c->first.starts_with(prefix); ++c) ++n;
    if (n >= opts_.max_transfers_per_cluster) {
      return Error(ErrorCode::kRefused, "cluster " + cluster + " already has " + std::to_string(n) +
                                            " transfers in progress (serve --max-transfers-per-cluster " +
                                            std::to_string(opts_.max_transfers_per_cluster) + "); try again later");
    }
  }
  if (it != claimed_.end()) {
    if (it->second.id != id) {
      return Error(ErrorCode::kRefused, "another transfer of this name is in progress; try again later");
    }
    // The same sender reconnected while its old connection lingers: end the old one.
    it->second.conn->Shutdown();
    if (!cv_.wait_for(lk, std::chrono::seconds(30), [&] { return claimed_.count(key) == 0; })) {
      return Error(ErrorCode::kRefused, "previous connection for this transfer is still busy; try again");
    }
  }
  claimed_[key] = Claimed{id, conn};
  return Status::Ok();
}

void Server::Release(const std::string& key, Conn* conn) {
  std::lock_guard lk(mu_);
  auto it = claimed_.find(key);
  if (it != claimed_.end() && it->second.conn == conn) claimed_.erase(it);
  cv_.notify_all();
}

Status Server::ReserveTemp(const std::string& cluster, std::uint64_t bytes) {
  std::lock_guard lk(mu_);
  std::uint64_t& used = temp_bytes_[cluster];
  std::uint64_t cap = opts_.max_incoming_bytes_per_cluster;
  if (cap > 0 && used + bytes > cap) {
    return Error(ErrorCode::kNoSpace, "temp space of cluster " + cluster + " in .incoming would exceed its cap of " +
                                          std::to_string(cap >> 20) + " MiB (serve --max-incoming-mib); transfer dropped");
  }
  used += bytes;
  return Status::Ok();
}

void Server::ReleaseTemp(const std::string& cluster, std::uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard lk(mu_);
  auto it = temp_bytes_.find(cluster);
  if (it == temp_bytes_.end()) return;
  it->second -= std::min(it->second, bytes);
  if (it->second == 0) temp_bytes_.erase(it);
}

void Server::ServeConnection(Conn& conn) { ServeWatched(conn, nullptr); }

void Server::ServeWatched(Conn& conn, Watch* watch) {
  Session s(*this, conn, watch);
  s.Run();
}

void Server::WatchDeadlines() {
  std::unique_lock lk(mu_);
  while (!stopping_.load()) {
    cv_.wait_for(lk, std::chrono::milliseconds(100));
    std::int64_t now = internal::NowMs();
    for (auto& a : conns_) {
      std::int64_t d = a->watch.deadline_ms.load();
      if (d == 0 || now < d || a->watch.fired.exchange(true)) continue;
      bool hello = a->watch.in_hello.load();
      Log("serve: dropped " + a->conn->peer_address() + ": " +
          (hello ? "no HELLO within " + Seconds(opts_.handshake_timeout) + " (serve --handshake-timeout)"
                 : "no frame for " + Seconds(opts_.idle_timeout) + " (serve --idle-timeout)"));
      a->conn->Shutdown();
    }
  }
}

void Server::Reap(bool all) {
  std::list<std::shared_ptr<Active>> finished;
  {
    std::lock_guard lk(mu_);
    for (auto* list : {&conns_, &refusing_}) {
      for (auto it = list->begin(); it != list->end();) {
        if (all || (*it)->done.load()) {
          finished.push_back(*it);
          it = list->erase(it);
        } else {
          ++it;
        }
      }
    }
  }
  for (auto& a : finished) {
    if (a->thread.joinable()) a->thread.join();
  }
}

bool Server::Dispatch(std::unique_ptr<Conn> conn) {
  auto active = std::make_shared<Active>();
  active->conn = std::move(conn);
  // No lock is held across network I/O: a refused client that does not read
  // gets its ERROR from a thread of its own, so it delays neither the accept
  // loop nor any session's start or end (they take mu_).
  bool refuse = false, drop = false;
  {
    std::lock_guard lk(mu_);
    if (stopping_.load()) return false;
    if (conns_.size() >= opts_.max_connections) {
      refuse = true;
      drop = refusing_.size() >= kMaxRefusing;
      if (!drop) refusing_.push_back(active);
    } else {
      conns_.push_back(active);
    }
  }
  if (refuse) {
    Log("serve: too many connections, refusing " + active->conn->peer_address());
    if (drop) {
      active->conn->Shutdown();  // too many refusals in flight: close without a word
      return true;
    }
    active->thread = std::thread([active] {
      active->conn->SetTimeout(std::chrono::milliseconds(1000));
      FrameWriter w(*active->conn);
      (void)w.Write(ErrorFrame{ErrorCode::kRefused, "receiver busy (too many connections); try again"});
      active->conn->Shutdown();
      active->done.store(true);
    });
    return true;
  }
  active->thread = std::thread([this, active] {
    ServeWatched(*active->conn, &active->watch);
    active->conn->Shutdown();
    active->done.store(true);
  });
  return true;
}

Status Server::Run(Listener& listener) {
  {
    std::lock_guard lk(mu_);
    listener_ = &listener;
  }
  std::thread watchdog([this] { WatchDeadlines(); });
  while (!stopping_.load()) {
    auto c = listener.Accept();
    Reap(false);
    if (!c.ok()) {
      if (stopping_.load()) break;
      Log("serve: refused a connection: " + c.error().message());
      continue;
    }
    if (!Dispatch(std::move(*c))) break;
  }
  {
    std::lock_guard lk(mu_);
    stopping_.store(true);
    cv_.notify_all();
    for (auto& a : conns_) a->conn->Shutdown();
    for (auto& a : refusing_) a->conn->Shutdown();
  }
  watchdog.join();
  Reap(true);
  std::lock_guard lk(mu_);
  listener_ = nullptr;
  return Status::Ok();
}

void Server::Stop() {
  stopping_.store(true);
  std::lock_guard lk(mu_);
  if (listener_) listener_->Close();
  for (auto& a : conns_) a->conn->Shutdown();
  for (auto& a : refusing_) a->conn->Shutdown();
}

}  // namespace walferry::transport
