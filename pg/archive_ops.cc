#include "pg/archive_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include "core/bytes.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/names.h"
#include "core/hash.h"
#include "core/mapped_file.h"
#include "core/stream.h"
#include "pg/prefetch_window.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"
#include "pg/archive_ops_internal.h"
#include "transport/fetch.h"

extern char** environ;

namespace walferry::pg {

using internal::CheckingSink;
using internal::kHeadBytes;

using walfmt::IsWalSegmentName;
using walfmt::NextSegmentNames;
using walfmt::ParseSegmentName;
using walfmt::SegmentsPerLogId;

namespace {

constexpr char kPrefetchMagic[8] = {'W', 'F', 'P', 'F', '0', '0', '0', '1'};
constexpr std::size_t kTrailer = 24;  // XXH3-128 (low, high, little endian) + magic


Error Corrupt(const std::string& what, const Error& e) {
  ErrorCode code = e.code() == ErrorCode::kRefused ? ErrorCode::kCorrupt : e.code();
  return Error(code, what + ": " + e.message());
}

// Uses DIR/NAME from the prefetch cache when its trailer checksum verifies:
// the trailer is cut off and the file renamed onto dest (copied when dest is on
// another file system). Returns false (and drops the file) when unusable.
Result<bool> TryPrefetched(const std::string& path, const std::string& dest,
                           std::string_view name, walfmt::WalSegmentInfo* info) {
  auto fd = OpenFile(path, O_RDWR | O_NOFOLLOW);
  if (!fd.ok()) return false;
  auto drop = [&]() {
    ::unlink(path.c_str());
    return false;
  };
  struct stat st{};
  if (::fstat(fd->get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      st.st_size < static_cast<off_t>(kTrailer + kHeadBytes)) {
    return drop();
  }
  const off_t length = st.st_size - static_cast<off_t>(kTrailer);
  std::byte trailer[kTrailer];
  auto tr = PreadFull(fd->get(), trailer, length, path);
  if (!tr.ok() || *tr != kTrailer || std::memcmp(trailer + 16, kPrefetchMagic, 8) != 0) {
    return drop();
  }
  Hash128 want{LoadLe<std::uint64_t>(trailer), LoadLe<std::uint64_t>(trailer + 8)};
  CheckingSink check(nullptr, /*hash=*/true, 0, std::string(name));
  {
    // Hashed and page-checked in place (no copy through a buffer); unmapped
    // before the trailer is cut off below.
    auto map = MappedFile::Map(fd->get(), static_cast<std::size_t>(length), path);
    if (!map.ok()) return drop();
    (void)check.Write(map->bytes());
  }
  if (!(check.Digest() == want) || !check.CheckSegment(name, info, true).ok()) return drop();
  if (::ftruncate(fd->get(), length) != 0) return drop();
  // No fsync here: PostgreSQL makes a restored segment durable itself when it
  // keeps it (KeepFileRestoredFromArchive in xlogarchive.c: durable_rename of
  // RECOVERYXLOG into pg_wal), and fetches it again after a crash before that.
  struct stat dest_dir{};
  if (::stat(DirName(dest).c_str(), &dest_dir) == 0 && dest_dir.st_dev == st.st_dev) {
    // Same filesystem: move it into place.
    if (!RenameUnsynced(PosixFs(), AT_FDCWD, path, AT_FDCWD, dest, Replace::kYes, dest).ok()) {
      return drop();
    }
    return true;
  }
  WF_ASSIGN(auto out, AtomicFile::Create(dest, /*overwrite=*/true, 0600));
  std::vector<std::byte> buf(1 << 20);
  for (off_t off = 0; off < length;) {
    std::size_t n = static_cast<std::size_t>(std::min<off_t>(length - off, buf.size()));
    WF_ASSIGN(std::size_t got, PreadFull(fd->get(), std::span(buf.data(), n), off, path));
    if (got != n) return drop();
    WF_TRY(out->Write(std::span<const std::byte>(buf.data(), n)));
    off += static_cast<off_t>(n);
  }
  WF_TRY(out->Commit(/*durable=*/false));  // see above
  ::unlink(path.c_str());
  return true;
}

}  // namespace

// mkdir -p, mode 0700 for each directory it creates.
static Status MakePrivateDirs(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Status::Ok();
  if (errno != ENOENT) return ErrnoError(errno, "mkdir " + dir);
  std::string parent = DirName(dir);
  if (parent == dir || parent.empty() || parent == "/" || parent == ".") return ErrnoError(ENOENT, "mkdir " + dir);
  WF_TRY(MakePrivateDirs(parent));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError(errno, "mkdir " + dir);
  return Status::Ok();
}

std::string DefaultPrefetchDir(const std::string& dest) {
  // dest is PGDATA/pg_wal/RECOVERYXLOG (restore_command runs in PGDATA).
  auto abs = AbsolutePath(dest);
  std::string pgdata = DirName(DirName(abs.ok() ? *abs : dest));
  std::string base;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && x[0] == '/') {
    base = x;
  } else if (const char* h = std::getenv("HOME"); h && h[0] == '/') {
    base = std::string(h) + "/.cache";
  }
  std::string key;
  for (char c : pgdata) key += (c == '/' ? '_' : c);
  std::string dir = base.empty() ? "" : base + "/walferry/prefetch/" + key;
  // Never inside PGDATA (pg_rewind and base backups would carry it along).
  if (dir.empty() || dir.rfind(pgdata + "/", 0) == 0) dir = pgdata + ".walferry-prefetch";
  return dir;
}

namespace {

// Starts `self get NAME - --prefetch-worker ...` detached (own session,
// stdio on /dev/null), without waiting for it; only when the read-ahead
// window runs low and no worker is filling it (pg/prefetch_window.h).
void StartPrefetchWorker(const GetOptions& o, const std::string& dir, std::uint32_t seg_size) {
  // Bounded by bytes as well as by count.
  std::uint64_t seg = seg_size > 0 ? seg_size : (16u << 20);
  std::uint64_t by_bytes = std::max<std::uint64_t>(1, o.prefetch_max_bytes / seg);
  int count = static_cast<int>(std::min<std::uint64_t>(static_cast<std::uint64_t>(o.prefetch), by_bytes));
  if (!PrefetchWorkerNeeded(dir, o.name, seg_size, count)) return;
  std::vector<std::string> args = {o.self,          "get",
                                   o.name,          "-",
                                   "--prefetch-worker",
                                   "--prefetch",    std::to_string(count),
                                   "--prefetch-dir", dir,
                                   "--segment-size", std::to_string(seg_size)};
  if (!o.cluster.empty()) args.insert(args.end(), {"--cluster", o.cluster});
  args.insert(args.end(), o.worker_args.begin(), o.worker_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; ++fd) {
    posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID);
  pid_t pid;
  (void)::posix_spawn(&pid, o.self.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
}

}  // namespace

Result<std::string> ResolveCluster(const archive::Archive& a, const std::string& requested) {
  if (!requested.empty()) {
    WF_TRY(ValidateClusterName(requested));
    return requested;
  }
  WF_ASSIGN(auto clusters, a.Clusters());
  if (clusters.size() == 1) return clusters[0];
  return std::string("main");
}

namespace {

class LocalSourceImpl final : public EntrySource {
 public:
  LocalSourceImpl(const archive::Archive& a, std::string cluster) : a_(a), cluster_(std::move(cluster)) {}
  Status Read(const std::string& name, ByteSink& sink) override {
    WF_ASSIGN(archive::StoredEntry entry, a_.Find(cluster_, name));
    return a_.Read(entry, sink);
  }

 private:
  const archive::Archive& a_;
  std::string cluster_;
};

class RemoteSourceImpl final : public EntrySource {
 public:
  explicit RemoteSourceImpl(RemoteSpec spec) : spec_(std::move(spec)) {}
  Status Read(const std::string& name, ByteSink& sink) override {
    return transport::Fetch(spec_.endpoint, spec_.tls, spec_.cluster, name, sink);
  }

 private:
  RemoteSpec spec_;
};

}  // namespace

std::unique_ptr<EntrySource> LocalSource(const archive::Archive& a, std::string cluster) {
  return std::make_unique<LocalSourceImpl>(a, std::move(cluster));
}

std::unique_ptr<EntrySource> RemoteSource(RemoteSpec spec) {
  return std::make_unique<RemoteSourceImpl>(std::move(spec));
}

Status GetFromArchive(EntrySource& source, const GetOptions& o) {
  const bool segment = IsWalSegmentName(o.name);
  std::string dir;
  if (segment && o.prefetch > 0) {
    if (o.prefetch_dir.empty()) {
      dir = DefaultPrefetchDir(o.dest);
    } else {
      WF_ASSIGN(dir, AbsolutePath(o.prefetch_dir));
    }
  }
  walfmt::WalSegmentInfo info;
  bool done = false;
  if (!dir.empty()) {
    WF_ASSIGN(done, TryPrefetched(dir + "/" + o.name, o.dest, o.name, &info));
  }
  if (!done) {
    WF_ASSIGN(auto out, AtomicFile::Create(o.dest, /*overwrite=*/true, 0600));
    CheckingSink check(out.get(), false, 0, segment ? o.name : std::string());
    Status st = source.Read(o.name, check);
    if (!st.ok()) {
      if (st.error().code() == ErrorCode::kNotFound) return st;
      return Corrupt(o.name + " in the archive", st.error());
    }
    if (segment) {
      Status c = check.CheckSegment(o.name, &info, true);
      if (!c.ok()) return Corrupt(o.name + " in the archive", c.error());
    }
    // A segment needs no fsync of ours (PostgreSQL's KeepFileRestoredFromArchive
    // does it); history and other files keep the full durable commit.
    WF_TRY(out->Commit(/*durable=*/!segment));
  }
  if (!dir.empty() && !o.self.empty()) StartPrefetchWorker(o, dir, info.segment_size);
  return Status::Ok();
}

Status PrefetchSegments(EntrySource& source, const std::string& name, std::uint32_t segment_size, int count,
                        const std::string& dir) {
  auto seg = ParseSegmentName(name);
  if (!seg) return Error(ErrorCode::kInvalidArgument, "not a segment name: " + name);
  WF_ASSIGN(std::uint64_t per_id, SegmentsPerLogId(segment_size));
  WF_TRY(MakePrivateDirs(dir));
  WF_ASSIGN(UniqueFd lock, OpenFile(dir + "/.lock", O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return Status::Ok();  // another worker runs
  // Drop what PostgreSQL has gone past, and temp files of killed workers.
  if (UniqueDir dir_handle(::opendir(dir.c_str())); dir_handle) {
    DIR* d = dir_handle.get();
    const std::time_t now = std::time(nullptr);
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      struct stat st{};
      if (IsWalSegmentName(n) && n <= name) {
        ::unlinkat(::dirfd(d), n.c_str(), 0);
      } else if (n.size() > 6 && n.ends_with(".wftmp") &&
                 ::fstatat(::dirfd(d), n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                 now - st.st_mtime > 600) {
        ::unlinkat(::dirfd(d), n.c_str(), 0);
      }
    }
  }
  for (const std::string& next : NextSegmentNames(*seg, per_id, count)) {
    const std::string path = dir + "/" + next;
    if (::access(path.c_str(), F_OK) == 0) continue;
    WF_ASSIGN(auto out, AtomicFile::Create(path, /*overwrite=*/false, 0600));
    CheckingSink check(out.get(), /*hash=*/true, 0, next);
    Status st = source.Read(next, check);
    if (!st.ok()) {
      if (st.error().code() == ErrorCode::kNotFound) break;  // not archived yet
      return st;
    }
    WF_TRY(check.CheckSegment(next, nullptr, true));
    std::byte trailer[kTrailer];
    Hash128 h = check.Digest();
    StoreLe<std::uint64_t>(trailer, h.low);
    StoreLe<std::uint64_t>(trailer + 8, h.high);
    std::memcpy(trailer + 16, kPrefetchMagic, 8);
    WF_TRY(out->Write(trailer));
    Status c = out->Commit();
    if (!c.ok() && c.error().code() != ErrorCode::kExists) return c;
  }
  return Status::Ok();
}

}  // namespace walferry::pg
