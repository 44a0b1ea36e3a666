// Archive and Incoming: durable, atomic placement of received files.
//
// Every path below ROOT is reached with openat/mkdirat from a directory fd and
// O_NOFOLLOW, so a symlink planted inside ROOT is never followed: a symlinked
// cluster or kind directory is refused, a symlinked entry is ignored.
//
// An incoming transfer lives in ROOT/.incoming/<id>.data (flock'ed while a
// receiver works on it) with its resume manifest <id>.state, replaced
// atomically (write <id>.state.tmp, fsync, rename, fsync dir) at each Sync.
// Commit moves the data with renameat2(RENAME_NOREPLACE) and fsyncs the
// target directory, so a final name never holds partial data.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/bytes.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/io.h"
#include "core/path.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"

#include "archive/disk_internal.h"

namespace walferry::archive {
namespace {

using internal::FindStored;
using internal::IsTransferId;
using internal::Join;
using internal::kIncomingDir;
using internal::KindDir;
using internal::kManifestLimit;
using internal::kSysidFile;
using internal::Manifest;
using internal::OpenDirAt;
using internal::ParseManifest;
using internal::ReadSysid;
using internal::Registration;
using internal::Shared;

class ArchiveImpl final : public Archive {
 public:
  explicit ArchiveImpl(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  StoreFormat format() const override { return shared_->format; }
  void SetQuarantineCap(std::uint64_t bytes) override { shared_->quarantine_cap.store(bytes); }
  void SetReadThreads(std::size_t threads) override { shared_->read_threads.store(threads); }

  Status Read(const StoredEntry& entry, ByteSink& sink) const override {
    WF_ASSIGN(UniqueFd fd, OpenFile(entry.path, O_RDONLY | O_NOFOLLOW));
    return ReadStored(fd.get(), entry.path, entry.format, sink, shared_->read_threads.load());
  }

  std::uint64_t ReadMemory(const StoredEntry& entry) const override {
    auto fd = OpenFile(entry.path, O_RDONLY | O_NOFOLLOW);
    if (!fd.ok()) return kDefaultReadMemory;  // the Read fails as soon
    return StoredReadMemory(fd->get(), entry.format, shared_->read_threads.load(), kDefaultReadMemory);
  }
  const std::string& root() const override { return shared_->root; }

  Result<std::unique_ptr<Incoming>> Begin(const TransferSpec& spec) override {
    // BeginImpl's errors are raw (it never goes through IncomingImpl::Fail).
    auto r = BeginImpl(spec);
    if (!r.ok() && r.error().code() == ErrorCode::kNoSpace) {
      return Error(ErrorCode::kNoSpace, "receiver disk full under " + shared_->root +
                                            " while starting " + spec.name + " (" +
                                            r.error().message() + "); free space and retry");
    }
    return r;
  }

  Result<std::unique_ptr<Incoming>> BeginImpl(const TransferSpec& spec) {
    WF_TRY(ValidateClusterName(spec.cluster));
    WF_ASSIGN(EntryKind kind, ClassifyName(spec.name));
    if (!IsTransferId(spec.transfer_id)) {
      return Error(ErrorCode::kProtocol, "transfer id must be 32 hex digits");
    }
    if (shared_->format == StoreFormat::kRaw && kind == EntryKind::kFile &&
        (std::string_view(spec.name).ends_with(".zst") || std::string_view(spec.name).ends_with(".gz"))) {
      return Error(ErrorCode::kRefused,
                   "name '" + spec.name + "' refused: a raw store cannot hold names ending in "
                   ".zst or .gz (they would read as compressed entries); rename it");
    }
    const std::string key = spec.cluster + "/" + spec.name;
    {
      std::lock_guard lk(shared_->mu);
      if (shared_->active_names.count(key) || shared_->active_ids.count(spec.transfer_id)) {
        return Error(ErrorCode::kRefused, "transfer of " + spec.name + " already in progress");
      }
      shared_->active_names.insert(key);
      shared_->active_ids.insert(spec.transfer_id);
    }
    Registration reg(shared_, key, spec.transfer_id);

    const std::string cluster_shown = shared_->Path(spec.cluster);
    WF_ASSIGN(UniqueFd cluster_fd,
              OpenDirAt(shared_->root_fd.get(), spec.cluster, cluster_shown, true, *shared_->fs));
    WF_ASSIGN(UniqueFd dest_fd, OpenDirAt(cluster_fd.get(), std::string(KindDir(kind)),
                                          Join(cluster_shown, KindDir(kind)), true, *shared_->fs));

    const std::string data_name = spec.transfer_id + ".data";
    const std::string data_shown = shared_->IncomingPath(data_name);
    UniqueFd data_fd;
    if (int err = shared_->fs->OpenAt(shared_->incoming_fd.get(), data_name.c_str(),
                                      O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK, 0600, &data_fd);
        err != 0) {
      if (err == ELOOP) {
        return Error(ErrorCode::kRefused, data_shown + " is a symlink; refusing to follow it");
      }
      return ErrnoError(err, "open " + data_shown);
    }
    if (::flock(data_fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) {
        return Error(ErrorCode::kRefused, "transfer of " + spec.name + " already in progress");
      }
      return ErrnoError(errno, "lock " + data_shown);
    }
    struct stat st{};
    if (::fstat(data_fd.get(), &st) != 0) return ErrnoError(errno, "stat " + data_shown);
    if (!S_ISREG(st.st_mode)) return Error(ErrorCode::kRefused, data_shown + " is not a regular file");

    std::optional<Manifest> manifest;
    auto text = ReadSmallAt(*shared_->fs, shared_->incoming_fd.get(), spec.transfer_id + ".state",
                            kManifestLimit, shared_->IncomingPath(spec.transfer_id + ".state"),
                            O_NOFOLLOW);
    if (text.ok()) manifest = ParseManifest(*text);

    return internal::StartIncoming(shared_, spec, kind, std::move(reg), std::move(cluster_fd), std::move(dest_fd),
                                   std::move(data_fd), manifest);
  }

  Result<StoredEntry> Find(std::string_view cluster, std::string_view name) const override {
    WF_TRY(ValidateClusterName(cluster));
    WF_ASSIGN(EntryKind kind, ClassifyName(name));
    auto dir = OpenKindDir(cluster, kind);
    if (!dir.ok()) {
      if (dir.error().code() == ErrorCode::kNotFound) return NotFound(cluster, name);
      return dir.error();
    }
    auto f = FindStored(dir->get(), std::string(name));
    if (!f) return NotFound(cluster, name);
    StoredEntry e;
    e.name = std::string(name);
    e.path = Join(Join(shared_->Path(cluster), KindDir(kind)), name) + std::string(StoreSuffix(*f));
    e.format = *f;
    e.kind = kind;
    return e;
  }

  Result<std::vector<StoredEntry>> List(std::string_view cluster, EntryKind kind) const override {
    WF_TRY(ValidateClusterName(cluster));
    std::vector<StoredEntry> out;
    auto dir = OpenKindDir(cluster, kind);
    if (!dir.ok()) {
      if (dir.error().code() != ErrorCode::kNotFound) return dir.error();
      // A missing cluster is an error; a cluster without this kind is empty.
      WF_ASSIGN(UniqueFd c, OpenDirAt(shared_->root_fd.get(), std::string(cluster),
                                      shared_->Path(cluster), false));
      return out;
    }
    const std::string dir_shown = Join(shared_->Path(cluster), KindDir(kind));
    WF_ASSIGN(auto names, ReadDirNames(dir->get(), dir_shown));
    for (const auto& file : names) {
      struct stat st{};
      if (::fstatat(dir->get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
        continue;
      }
      StoredEntry e;
      e.format = StoreFormat::kRaw;
      e.name = file;
      for (StoreFormat f : {StoreFormat::kZstd, StoreFormat::kGzip}) {
        if (std::string_view(file).ends_with(StoreSuffix(f))) {
          e.format = f;
          e.name = file.substr(0, file.size() - StoreSuffix(f).size());
        }
      }
      auto k = ClassifyName(e.name);
      if (!k.ok() || *k != kind) continue;
      e.kind = kind;
      e.path = Join(dir_shown, file);
      out.push_back(std::move(e));
    }
    std::sort(out.begin(), out.end(), [](const StoredEntry& a, const StoredEntry& b) {
      return a.name != b.name ? a.name < b.name : a.path < b.path;
    });
    return out;
  }

  Result<std::vector<std::string>> Clusters() const override {
    WF_ASSIGN(auto names, ReadDirNames(shared_->root_fd.get(), shared_->root));
    std::vector<std::string> out;
    for (auto& n : names) {
      if (!ValidateClusterName(n).ok()) continue;
      struct stat st{};
      if (::fstatat(shared_->root_fd.get(), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISDIR(st.st_mode)) {
        out.push_back(std::move(n));
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::optional<std::uint64_t>> SystemIdentifier(std::string_view cluster) const override {
    WF_TRY(ValidateClusterName(cluster));
    WF_ASSIGN(UniqueFd c, OpenDirAt(shared_->root_fd.get(), std::string(cluster),
                                    shared_->Path(cluster), false));
    return ReadSysid(*shared_->fs, c.get(), Join(shared_->Path(cluster), kSysidFile));
  }

  Status PurgeStale(std::int64_t max_age_seconds) override {
    const int dfd = shared_->incoming_fd.get();
    WF_ASSIGN(auto names, ReadDirNames(dfd, shared_->Path(kIncomingDir), /*hidden=*/true));
    const std::int64_t now = static_cast<std::int64_t>(::time(nullptr));
    for (const auto& file : names) {
      // <id>.data, <id>.state, and the manifest's temp files .<id>.state.<random>.wftmp.
      std::string_view n = file;
      if (n[0] == '.') {
        if (!std::string_view(n).ends_with(".wftmp")) continue;
        n.remove_prefix(1);
      }
      std::string id(n.substr(0, n.find('.')));
      // Held until the file is gone, so a Begin of this id in this process
      // either runs before (and is skipped) or after (and starts over).
      std::lock_guard lk(shared_->mu);
      if (shared_->active_ids.count(id)) continue;
      // A transfer is as old as the newest of its files.
      std::int64_t newest = 0;
      for (const char* ext : {".data", ".state", ".state.tmp"}) {
        struct stat st{};
        if (::fstatat(dfd, (id + ext).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
          newest = std::max<std::int64_t>(newest, st.st_mtim.tv_sec);
        }
      }
      struct stat st{};
      if (::fstatat(dfd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        newest = std::max<std::int64_t>(newest, st.st_mtim.tv_sec);
      }
      if (now - newest <= max_age_seconds) continue;
      // Skip data another receiver process is still writing.
      int fd = ::openat(dfd, (id + ".data").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (fd >= 0) {
        bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
        ::close(fd);
        if (busy) continue;
      }
      if (int err = shared_->fs->Unlink(dfd, file.c_str()); err != 0 && err != ENOENT) {
        return ErrnoError(err, "remove " + shared_->IncomingPath(file));
      }
    }
    return Status::Ok();
  }

 private:
  Error NotFound(std::string_view cluster, std::string_view name) const {
    return Error(ErrorCode::kNotFound, std::string(name) + " not found in the archive of cluster " +
                                           std::string(cluster));
  }

  Result<UniqueFd> OpenKindDir(std::string_view cluster, EntryKind kind) const {
    const std::string cluster_shown = shared_->Path(cluster);
    WF_ASSIGN(UniqueFd c, OpenDirAt(shared_->root_fd.get(), std::string(cluster), cluster_shown, false));
    return OpenDirAt(c.get(), std::string(KindDir(kind)), Join(cluster_shown, KindDir(kind)), false);
  }

  // Names in a directory; those starting with '.' only when `hidden`.
  static Result<std::vector<std::string>> ReadDirNames(int dirfd, const std::string& shown,
                                                       bool hidden = false) {
    WF_ASSIGN(UniqueFd fd, OpenAt(dirfd, ".", O_RDONLY | O_DIRECTORY));
    UniqueDir d(::fdopendir(fd.get()));
    if (!d) return ErrnoError(errno, "open " + shown);
    fd.Release();  // owned by the DIR now
    std::vector<std::string> out;
    errno = 0;
    while (dirent* e = ::readdir(d.get())) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      if (n[0] != '.' || hidden) out.emplace_back(n);
    }
    if (errno != 0) return ErrnoError(errno, "read directory " + shown);
    return out;
  }

  std::shared_ptr<Shared> shared_;
};

}  // namespace

Result<std::unique_ptr<Archive>> Archive::Open(const std::string& root, StoreFormat format) {
  return Open(root, format, PosixFs());
}

Result<std::unique_ptr<Archive>> Archive::Open(const std::string& root, StoreFormat format,
                                               FileSystem& fs) {
  if (root.empty()) return Error(ErrorCode::kInvalidArgument, "archive root is empty");
  auto shared = std::make_shared<Shared>();
  shared->format = format;
  shared->fs = &fs;
  WF_ASSIGN(shared->root, AbsolutePath(root));
  while (shared->root.size() > 1 && shared->root.back() == '/') shared->root.pop_back();
  // mkdir -p: missing parents too (0700 for each directory created).
  for (std::size_t pos = 1; pos != std::string::npos;) {
    pos = shared->root.find('/', pos + 1);
    std::string part = shared->root.substr(0, pos);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "create archive root " + part);
    }
  }
  // ROOT itself may be a symlink (operators do that); nothing below it is followed.
  WF_ASSIGN(shared->root_fd, OpenFile(shared->root, O_RDONLY | O_DIRECTORY));
  WF_ASSIGN(shared->incoming_fd, OpenDirAt(shared->root_fd.get(), kIncomingDir,
                                           shared->Path(kIncomingDir), true, fs));
  return std::unique_ptr<Archive>(new ArchiveImpl(std::move(shared)));
}

Result<std::unique_ptr<Archive>> Archive::OpenForReading(const std::string& root) {
  if (root.empty()) return Error(ErrorCode::kInvalidArgument, "archive root is empty");
  auto shared = std::make_shared<Shared>();
  shared->format = StoreFormat::kZstd;  // unused: a read-only archive stores nothing
  WF_ASSIGN(shared->root, AbsolutePath(root));
  while (shared->root.size() > 1 && shared->root.back() == '/') shared->root.pop_back();
  WF_ASSIGN(shared->root_fd, OpenFile(shared->root, O_RDONLY | O_DIRECTORY));
  return std::unique_ptr<Archive>(new ArchiveImpl(std::move(shared)));
}

}  // namespace walferry::archive
