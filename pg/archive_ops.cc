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
#include "transport/fetch.h"

extern char** environ;

namespace walferry::pg {

using walfmt::FindGaps;
using walfmt::Gap;
using walfmt::IsWalSegmentName;
using walfmt::NewestSegment;
using walfmt::NextSegmentNames;
using walfmt::ParseSegmentName;
using walfmt::SegmentsPerLogId;
using walfmt::SelectForCleanup;

namespace {

constexpr std::size_t kHeadBytes = 8192;
constexpr char kPrefetchMagic[8] = {'W', 'F', 'P', 'F', '0', '0', '0', '1'};
constexpr std::size_t kTrailer = 24;  // XXH3-128 (low, high, little endian) + magic


// Forwards to an optional sink while keeping the first bytes, the size and
// (optionally) the XXH3-128 of everything written.
class CheckingSink final : public ByteSink {
 public:
  // `segment_name`: a 24-hex name whose page timelines are walked
  // (walfmt::WalPageCheck) as the bytes pass; "" = none.
  explicit CheckingSink(ByteSink* next, bool hash = false, std::size_t stop_after = 0,
                        std::string segment_name = "")
      : next_(next), hash_(hash), stop_after_(stop_after), segment_name_(std::move(segment_name)) {}
  Status Write(std::span<const std::byte> data) override {
    if (head_.size() < kHeadBytes) {
      std::size_t take = std::min(kHeadBytes - head_.size(), data.size());
      head_.insert(head_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    }
    FeedPages(data);
    size_ += data.size();
    if (hash_) stream_.Update(data);
    if (next_) WF_TRY(next_->Write(data));
    if (stop_after_ && size_ >= stop_after_) {
      stopped_ = true;  // ends the reader early; stopped() tells it apart from a failure
      return Error(ErrorCode::kInternal, "read stopped after " + std::to_string(size_) + " bytes");
    }
    return Status::Ok();
  }
  Status Finish() override { return next_ ? next_->Finish() : Status::Ok(); }

  // For a segment name: the first page header must name it and the length
  // must be the segment size. Fills info.
  Status CheckSegment(std::string_view name, walfmt::WalSegmentInfo* info, bool whole) const {
    auto parsed = walfmt::ParseWalHeader(head_);
    if (!parsed.ok()) return parsed.error();
    WF_TRY(walfmt::CheckWalName(*parsed, name));
    if (!pages_status_.ok()) return pages_status_;
    if (whole && size_ != parsed->segment_size) {
      return Error(ErrorCode::kCorrupt, "length " + std::to_string(size_) +
                                            " is not the segment size " +
                                            std::to_string(parsed->segment_size));
    }
    if (info) *info = *parsed;
    return Status::Ok();
  }
  std::uint64_t size() const { return size_; }
  Hash128 Digest() const { return stream_.Digest(); }
  const std::vector<std::byte>& head() const { return head_; }
  // Whether Write refused more bytes because stop_after was reached.
  bool stopped() const { return stopped_; }

 private:
  void FeedPages(std::span<const std::byte> data) {
    if (segment_name_.empty() || !pages_status_.ok()) return;
    if (!pages_) {
      if (head_.size() < kHeadBytes) return;  // until the first page is all there
      auto first = walfmt::ParseWalHeader(head_);
      if (!first.ok()) {
        segment_name_.clear();  // CheckSegment reports the header itself
        return;
      }
      pages_.emplace(*first, walfmt::SegmentNameTimeline(segment_name_));
      // Everything so far, including `data`, is in head_ unless it overflowed.
      if (size_ + data.size() <= head_.size()) {
        pages_status_ = pages_->Feed(head_);
        return;
      }
      pages_status_ = pages_->Feed(std::span<const std::byte>(head_).first(static_cast<std::size_t>(size_)));
      if (pages_status_.ok()) pages_status_ = pages_->Feed(data);
      return;
    }
    pages_status_ = pages_->Feed(data);
  }

  ByteSink* next_;
  bool hash_;
  std::size_t stop_after_;
  bool stopped_ = false;
  std::vector<std::byte> head_;
  std::uint64_t size_ = 0;
  Xxh3Stream stream_;
  std::string segment_name_;
  std::optional<walfmt::WalPageCheck> pages_;
  Status pages_status_ = Status::Ok();
};

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

// Reads the long page header of a stored segment (stops decompressing early).
Result<walfmt::WalSegmentInfo> ReadSegmentHeader(const archive::Archive& a, const archive::StoredEntry& e) {
  CheckingSink head(nullptr, false, kHeadBytes);
  Status st = a.Read(e, head);
  if (!st.ok() && !head.stopped()) return st.error();
  walfmt::WalSegmentInfo info;
  WF_TRY(head.CheckSegment(e.name, &info, false));
  return info;
}

// Reads a stored NNNNNNNN.history entry (through the archive: a bucket's entry
// is no local file) and checks it as PostgreSQL reads it.
Status CheckHistoryEntry(const archive::Archive& a, const archive::StoredEntry& e, std::uint32_t tli) {
  class TextSink final : public ByteSink {
   public:
    Status Write(std::span<const std::byte> d) override {
      if (text.size() + d.size() > archive::kMaxHistoryBytes) return Error(ErrorCode::kCorrupt, "too large");
      text.append(reinterpret_cast<const char*>(d.data()), d.size());
      return Status::Ok();
    }
    Status Finish() override { return Status::Ok(); }
    std::string text;
  } sink;
  WF_TRY(a.Read(e, sink));
  auto parsed = archive::ParseTimelineHistory(sink.text, tli);
  if (!parsed.ok()) return parsed.error();
  return Status::Ok();
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

Result<CleanupResult> CleanupArchive(const archive::Archive& a, const std::string& cluster,
                                     const std::string& restart_point, bool dry_run) {
  WF_ASSIGN(auto entries, a.List(cluster, archive::EntryKind::kWal));
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  WF_ASSIGN(auto selected, SelectForCleanup(names, restart_point));
  CleanupResult r;
  std::string wal_dir;
  for (const auto& e : entries) {
    if (std::find(selected.begin(), selected.end(), e.name) == selected.end()) continue;
    if (!dry_run) WF_TRY(a.Remove(e));
    if (e.path.rfind('/', 0) == 0) wal_dir = DirName(e.path);  // a disk archive: fsync its directory
    r.removed.push_back(e.name);
  }
  if (!dry_run && !wal_dir.empty()) WF_TRY(FsyncDir(wal_dir));
  return r;
}

Result<std::vector<ClusterReport>> InspectArchive(const archive::Archive& a,
                                                  const std::vector<std::string>& clusters,
                                                  bool full) {
  std::vector<std::string> names = clusters;
  if (names.empty()) {
    WF_ASSIGN(names, a.Clusters());
  }
  std::vector<ClusterReport> reports;
  for (const std::string& cluster : names) {
    WF_TRY(ValidateClusterName(cluster));
    ClusterReport rep;
    rep.cluster = cluster;
    WF_ASSIGN(auto wal, a.List(cluster, archive::EntryKind::kWal));
    WF_ASSIGN(auto files, a.List(cluster, archive::EntryKind::kFile));
    rep.wal_files = wal.size();
    rep.other_files = files.size();
    std::vector<std::string> wal_names;
    for (const auto& e : wal) wal_names.push_back(e.name);
    rep.newest_segment = NewestSegment(wal_names);
    WF_ASSIGN(auto quarantined, archive::ListQuarantine(a, cluster));
    for (const auto& q : quarantined) {
      rep.quarantined.push_back("quarantine/" + q.file + " (" + q.name + ", received " + q.received + ", " +
                                std::to_string(q.size) + " bytes): " + q.details);
    }
    if (full) {
      for (const auto* list : {&wal, &files}) {
        for (const auto& e : *list) {
          CheckingSink check(nullptr, false, 0, IsWalSegmentName(e.name) ? e.name : std::string());
          Status st = a.Read(e, check);
          if (!st.ok()) {
            rep.problems.push_back(e.name + ": " + st.error().message());
            continue;
          }
          if (std::uint32_t tli = archive::HistoryNameTimeline(e.name); tli != 0) {
            Status hs = CheckHistoryEntry(a, e, tli);
            if (!hs.ok()) rep.problems.push_back(e.name + ": " + hs.error().message());
            continue;
          }
          if (!IsWalSegmentName(e.name)) continue;
          walfmt::WalSegmentInfo info;
          Status c = check.CheckSegment(e.name, &info, true);
          if (!c.ok()) {
            rep.problems.push_back(e.name + ": " + c.error().message());
          } else if (rep.segment_size == 0) {
            rep.segment_size = info.segment_size;
          } else if (rep.segment_size != info.segment_size) {
            rep.problems.push_back(e.name + ": segment size " + std::to_string(info.segment_size) +
                                   " differs from the cluster's " +
                                   std::to_string(rep.segment_size));
          }
        }
      }
    } else if (!rep.newest_segment.empty()) {
      for (const auto& e : wal) {
        if (e.name != rep.newest_segment) continue;
        auto info = ReadSegmentHeader(a, e);
        if (info.ok()) {
          rep.segment_size = info->segment_size;
        } else {
          rep.problems.push_back(e.name + ": " + info.error().message());
        }
      }
    }
    if (rep.segment_size != 0) {
      auto per_id = SegmentsPerLogId(rep.segment_size);
      if (per_id.ok()) {
        for (const Gap& g : FindGaps(wal_names, *per_id)) {
          rep.gaps.push_back(g.first_missing + (g.count > 1 ? ".." + g.last_missing : "") + " (" +
                             std::to_string(g.count) + (g.count == 1 ? " segment)" : " segments)"));
        }
      }
    }
    reports.push_back(std::move(rep));
  }
  return reports;
}

}  // namespace walferry::pg
