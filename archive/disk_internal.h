// Internals of the disk archive shared by its .cc files (not a public API;
// archive/archive.h is):
//   dirfd.cc     directories and stored files reached from a directory fd
//   manifest.cc  the resume manifest <transfer_id>.state
//   sysid.cc     ROOT/<cluster>/system_identifier
//   incoming.cc  the incoming writer (Incoming): the archive contract
//   archive.cc   the Archive: the active-transfer registry, Begin, catalogue, purge
#pragma once

#include <atomic>
#include <charconv>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/fd.h"
#include "core/fs.h"

namespace walferry::archive::internal {

inline constexpr char kIncomingDir[] = ".incoming";
inline constexpr char kSysidFile[] = "system_identifier";
inline constexpr std::size_t kManifestLimit = 64 << 10;

inline std::string_view KindDir(EntryKind kind) { return kind == EntryKind::kWal ? "wal" : "files"; }
// 32 hex digits.
bool IsTransferId(std::string_view id);

template <typename T>
inline bool ParseNumber(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

inline std::string Join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

// --- state shared by an Archive and its Incomings ---
struct Shared {
  std::string root;
  StoreFormat format;
  UniqueFd root_fd;
  UniqueFd incoming_fd;
  std::mutex mu;                    // guards the two sets
  std::set<std::string> active_names;  // "cluster/name"
  std::set<std::string> active_ids;
  std::mutex sysid_mu;              // serializes system_identifier check-and-record
  std::atomic<std::uint64_t> quarantine_cap{kDefaultQuarantineCap};
  std::atomic<std::size_t> read_threads{0};  // Store::SetReadThreads
  FileSystem* fs = &PosixFs();      // every placement goes through it (core/fs.h)

  std::string Path(std::string_view a) const { return Join(root, a); }
  std::string IncomingPath(std::string_view name) const {
    return Join(Join(root, kIncomingDir), name);
  }
};

// Removes `id`'s registry entries when destroyed.
class Registration {
 public:
  Registration() = default;
  Registration(std::shared_ptr<Shared> shared, std::string key, std::string id)
      : shared_(std::move(shared)), key_(std::move(key)), id_(std::move(id)) {}
  Registration(Registration&&) = default;
  Registration& operator=(Registration&&) = default;
  ~Registration() {
    if (!shared_) return;
    std::lock_guard lk(shared_->mu);
    shared_->active_names.erase(key_);
    shared_->active_ids.erase(id_);
  }

 private:
  std::shared_ptr<Shared> shared_;
  std::string key_, id_;
};

Result<std::optional<std::uint64_t>> ReadSysid(FileSystem& fs, int cluster_fd, const std::string& shown);
Error SysidMismatch(std::uint64_t got, std::uint64_t have);
// Looks for `name` in any store format under `dirfd`; regular files only.
std::optional<StoreFormat> FindStored(int dirfd, const std::string& name);

// The Incoming of a transfer Begin has registered and opened (its cluster and
// kind directories, its flock'ed temp data): resumes from `manifest` when it
// describes this transfer, else starts at chunk 0.
Result<std::unique_ptr<Incoming>> StartIncoming(std::shared_ptr<Shared> shared, const TransferSpec& spec,
                                               EntryKind kind, Registration reg, UniqueFd cluster_fd,
                                               UniqueFd dest_fd, UniqueFd data_fd,
                                               const std::optional<Manifest>& manifest);

}  // namespace walferry::archive::internal
