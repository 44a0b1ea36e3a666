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

namespace walferry::archive {
namespace {

using walfmt::CheckWalName;
using walfmt::IsWalSegmentName;
using walfmt::ParseWalHeader;
using walfmt::SegmentNameTimeline;
using walfmt::WalPageCheck;
using walfmt::WalSegmentInfo;

constexpr char kIncomingDir[] = ".incoming";
constexpr char kSysidFile[] = "system_identifier";
constexpr char kManifestMagic[] = "walferry-incoming 1";
constexpr std::size_t kManifestLimit = 64 << 10;

std::string_view KindDir(EntryKind kind) { return kind == EntryKind::kWal ? "wal" : "files"; }

bool IsTransferId(std::string_view id) {
  return id.size() == 32 &&
         std::all_of(id.begin(), id.end(), [](char c) { return HexDigitValue(c) >= 0; });
}

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string Join(const std::string& dir, std::string_view name) {
  return dir + "/" + std::string(name);
}

}  // namespace

namespace internal {

Result<UniqueFd> OpenDirAt(int dirfd, const std::string& name, const std::string& shown,
                           bool create) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) return UniqueFd(fd);
    int err = errno;
    if (err == EINTR) continue;
    if (err == ELOOP || err == ENOTDIR) {
      return Error(ErrorCode::kRefused,
                   shown + " is a symlink or not a directory; the receiver never follows symlinks "
                           "inside its root (replace it with a real directory)");
    }
    if (err != ENOENT || !create) return ErrnoError(err, "open " + shown);
    if (::mkdirat(dirfd, name.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoError(errno, "mkdir " + shown);
    }
    WF_TRY(Fsync(dirfd, "directory of " + shown));
  }
  return Error(ErrorCode::kIo, "cannot open directory " + shown);
}

// --- resume manifest (declared in archive_internal.h for the fuzz target) ---

std::string SerializeManifest(const Manifest& m) {
  std::string s = std::string(kManifestMagic) + "\n";
  auto add = [&](std::string_view k, const std::string& v) {
    s += k;
    s += '=';
    s += v;
    s += '\n';
  };
  add("transfer_id", m.transfer_id);
  add("cluster", m.cluster);
  add("name", m.name);
  add("store", std::to_string(static_cast<int>(m.store)));
  add("raw_size", std::to_string(m.raw_size));
  add("chunks", std::to_string(m.chunks));
  add("raw_offset", std::to_string(m.raw_offset));
  add("data_length", std::to_string(m.data_length));
  add("wal_sysid", std::to_string(m.wal_sysid));
  add("wal_seg_size", std::to_string(m.wal_seg_size));
  add("wal_timeline", std::to_string(m.wal_timeline));
  add("wal_page_address", std::to_string(m.wal_page_address));
  add("hash_state", HexEncode(m.hash_state));
  // Guards against a torn or edited manifest; any mismatch restarts the transfer.
  char sum[32];
  std::snprintf(sum, sizeof sum, "%016llx",
                static_cast<unsigned long long>(Xxh3_64(std::as_bytes(std::span(s.data(), s.size())))));
  add("check", sum);
  return s;
}

std::optional<Manifest> ParseManifest(std::string_view text) {
  auto check_pos = text.rfind("check=");
  if (check_pos == std::string_view::npos || (check_pos > 0 && text[check_pos - 1] != '\n')) {
    return std::nullopt;
  }
  std::string_view body = text.substr(0, check_pos);
  std::string_view check = text.substr(check_pos + 6);
  if (!check.empty() && check.back() == '\n') check.remove_suffix(1);
  char sum[32];
  std::snprintf(sum, sizeof sum, "%016llx",
                static_cast<unsigned long long>(Xxh3_64(std::as_bytes(std::span(body.data(), body.size())))));
  if (check != sum) return std::nullopt;
  if (body.substr(0, sizeof kManifestMagic) != std::string(kManifestMagic) + "\n") return std::nullopt;
  body.remove_prefix(sizeof kManifestMagic);
  Manifest m;
  int seen = 0;
  while (!body.empty()) {
    auto nl = body.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    auto eq = line.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    std::string_view k = line.substr(0, eq), v = line.substr(eq + 1);
    bool ok = true;
    int store = 0;
    if (k == "transfer_id") m.transfer_id = v;
    else if (k == "cluster") m.cluster = v;
    else if (k == "name") m.name = v;
    else if (k == "store") { ok = ParseNumber(v, &store) && store >= 0 && store <= 2; m.store = static_cast<StoreFormat>(store); }
    else if (k == "raw_size") ok = ParseNumber(v, &m.raw_size);
    else if (k == "chunks") ok = ParseNumber(v, &m.chunks);
    else if (k == "raw_offset") ok = ParseNumber(v, &m.raw_offset);
    else if (k == "data_length") ok = ParseNumber(v, &m.data_length);
    else if (k == "wal_sysid") ok = ParseNumber(v, &m.wal_sysid);
    else if (k == "wal_seg_size") ok = ParseNumber(v, &m.wal_seg_size);
    else if (k == "wal_timeline") ok = ParseNumber(v, &m.wal_timeline);
    else if (k == "wal_page_address") ok = ParseNumber(v, &m.wal_page_address);
    else if (k == "hash_state") ok = HexDecode(v, &m.hash_state);
    else ok = false;
    if (!ok) return std::nullopt;
    ++seen;
  }
  if (seen != 13) return std::nullopt;
  return m;
}

}  // namespace internal
namespace {
using internal::Manifest;
using internal::OpenDirAt;
using internal::ParseManifest;
using internal::SerializeManifest;

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

// Reads ROOT/<cluster>/system_identifier; nullopt when absent.
Result<std::optional<std::uint64_t>> ReadSysid(FileSystem& fs, int cluster_fd,
                                               const std::string& shown) {
  auto text = ReadSmallAt(fs, cluster_fd, kSysidFile, 256, shown, O_NOFOLLOW);
  if (!text.ok()) {
    if (text.error().code() == ErrorCode::kNotFound) return std::optional<std::uint64_t>();
    return text.error();
  }
  std::string_view v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.remove_suffix(1);
  std::uint64_t id = 0;
  if (!ParseNumber(v, &id)) {
    return Error(ErrorCode::kCorrupt, shown + " is unreadable; fix or remove it by hand");
  }
  return std::optional<std::uint64_t>(id);
}

Error SysidMismatch(std::uint64_t got, std::uint64_t have) {
  return Error(ErrorCode::kRefused, "WAL from a different cluster (system identifier " +
                                        std::to_string(got) + ", archive has " +
                                        std::to_string(have) + ")");
}

// Looks for `name` in any store format under `dirfd`; regular files only.
std::optional<StoreFormat> FindStored(int dirfd, const std::string& name) {
  for (StoreFormat f : {StoreFormat::kZstd, StoreFormat::kGzip, StoreFormat::kRaw}) {
    std::string file = name + std::string(StoreSuffix(f));
    struct stat st{};
    if (::fstatat(dirfd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      return f;
    }
  }
  return std::nullopt;
}

class IncomingImpl final : public Incoming {
 public:
  IncomingImpl(std::shared_ptr<Shared> shared, TransferSpec spec, EntryKind kind,
               Registration reg, UniqueFd cluster_fd, UniqueFd dest_fd, UniqueFd data_fd)
      : shared_(std::move(shared)),
        spec_(std::move(spec)),
        kind_(kind),
        is_segment_(IsWalSegmentName(spec_.name)),
        reg_(std::move(reg)),
        cluster_fd_(std::move(cluster_fd)),
        dest_fd_(std::move(dest_fd)),
        data_fd_(std::move(data_fd)),
        io_(MakeFileIo()),
        data_name_(spec_.transfer_id + ".data"),
        state_name_(spec_.transfer_id + ".state"),
        dest_shown_(Join(Join(shared_->Path(spec_.cluster), KindDir(kind_)), spec_.name)) {}

  // Resumes from `m` when it describes this transfer and the data file holds
  // at least what it says; otherwise starts from zero. Never fails on a bad
  // manifest (that only costs a restart).
  Status Start(const std::optional<Manifest>& m) {
    struct stat st{};
    if (::fstat(data_fd_.get(), &st) != 0) return ErrnoError(errno, "stat " + DataShown());
    bool resume = m && m->transfer_id == spec_.transfer_id && m->cluster == spec_.cluster &&
                  m->name == spec_.name && m->store == shared_->format &&
                  m->raw_size == spec_.raw_size &&
                  static_cast<std::uint64_t>(st.st_size) >= m->data_length &&
                  (shared_->format != StoreFormat::kRaw || m->data_length == m->raw_offset) &&
                  (!is_segment_ || m->chunks == 0 || m->wal_seg_size != 0) &&
                  hash_.Restore(m->hash_state);
    if (resume) {
      next_chunk_ = durable_chunks_ = m->chunks;
      raw_offset_ = m->raw_offset;
      data_length_ = m->data_length;
      if (m->wal_seg_size != 0) {
        WalSegmentInfo info;
        info.system_id = m->wal_sysid;
        info.segment_size = m->wal_seg_size;
        info.timeline = m->wal_timeline;
        info.page_address = m->wal_page_address;
        wal_ = info;
      }
      manifest_written_ = true;
    } else {
      hash_.Reset();
      ::unlinkat(shared_->incoming_fd.get(), state_name_.c_str(), 0);
    }
    if (static_cast<std::uint64_t>(st.st_size) != data_length_ &&
        ::ftruncate(data_fd_.get(), static_cast<off_t>(data_length_)) != 0) {
      return ErrnoError(errno, "truncate " + DataShown());
    }
    // No directory fsync here: the data file's entry only matters once a
    // manifest points at it, and Sync fsyncs the directory after writing one.
    return Status::Ok();
  }

  ~IncomingImpl() override = default;  // keeps temp data and manifest for resume

  std::uint64_t next_chunk() const override { return next_chunk_; }
  std::uint64_t next_raw_offset() const override { return raw_offset_; }

  Status Append(std::uint64_t index, std::span<const std::byte> raw,
                compress::Algorithm frame_algorithm, std::span<const std::byte> frame) override {
    WF_TRY(CheckOpen());
    if (index != next_chunk_) {
      return Error(ErrorCode::kProtocol, spec_.name + ": chunk " + std::to_string(index) +
                                             " out of order (expected " +
                                             std::to_string(next_chunk_) + ")");
    }
    if (index == 0 && is_segment_) WF_TRY(CheckFirstChunk(raw));
    std::span<const std::byte> out = raw;
    if (shared_->format != StoreFormat::kRaw) {
      if (frame_algorithm == StoreAlgorithm(shared_->format)) {
        out = frame;
      } else {
        if (!recompressor_) {
          WF_ASSIGN(recompressor_, internal::Recompressor::Make(shared_->format));
        }
        WF_ASSIGN(out, recompressor_->Compress(raw));
      }
    }
    auto st = io_->WriteAt(data_fd_.get(), out, static_cast<off_t>(data_length_), DataShown());
    if (!st.ok()) return Fail(st.error());
    // Start writeback now (asynchronously), so the fsync at Sync/Commit finds
    // most of the data already on its way to disk while further chunks arrive.
    // Advisory only: its result does not matter (errors surface at fsync).
    (void)::sync_file_range(data_fd_.get(), static_cast<off_t>(data_length_),
                            static_cast<off_t>(out.size()), SYNC_FILE_RANGE_WRITE);
    hash_.Update(raw);
    raw_offset_ += raw.size();
    data_length_ += out.size();
    ++next_chunk_;
    return Status::Ok();
  }

  Result<std::uint64_t> Sync() override {
    WF_TRY(CheckOpen());
    if (manifest_written_ && durable_chunks_ == next_chunk_) return durable_chunks_;
    if (::fdatasync(data_fd_.get()) != 0) return Fail(ErrnoError(errno, "fdatasync " + DataShown()));
    Manifest m;
    m.transfer_id = spec_.transfer_id;
    m.cluster = spec_.cluster;
    m.name = spec_.name;
    m.store = shared_->format;
    m.raw_size = spec_.raw_size;
    m.chunks = next_chunk_;
    m.raw_offset = raw_offset_;
    m.data_length = data_length_;
    if (wal_) {
      m.wal_sysid = wal_->system_id;
      m.wal_seg_size = wal_->segment_size;
      m.wal_timeline = wal_->timeline;
      m.wal_page_address = wal_->page_address;
    }
    m.hash_state = hash_.Save();
    auto st = WriteAtomic(*shared_->fs, shared_->incoming_fd.get(), state_name_,
                          SerializeManifest(m), 0600, Replace::kYes,
                          shared_->IncomingPath(state_name_));
    if (!st.ok()) return Fail(st.error());
    durable_chunks_ = next_chunk_;
    manifest_written_ = true;
    return durable_chunks_;
  }

  Result<CommitOutcome> Commit(std::uint64_t raw_size, const Hash128& raw_hash) override {
    WF_TRY(CheckOpen());
    if (raw_size != raw_offset_ || (spec_.raw_size >= 0 &&
                                    static_cast<std::uint64_t>(spec_.raw_size) != raw_size)) {
      return Drop(Error(ErrorCode::kCorrupt,
                        spec_.name + ": received " + std::to_string(raw_offset_) +
                            " bytes but the sender's total is " + std::to_string(raw_size) +
                            "; nothing stored, send it again"));
    }
    Hash128 got = hash_.Digest();
    if (got != raw_hash) {
      return Drop(Error(ErrorCode::kCorrupt, spec_.name + ": XXH3-128 of the received data " +
                                                 got.Hex() + " differs from the sender's " +
                                                 raw_hash.Hex() + "; nothing stored, send it again"));
    }
    if (is_segment_) {
      if (!wal_) {
        return Drop(Error(ErrorCode::kRefused, spec_.name + " refused: empty, not a WAL segment"));
      }
      if (raw_size != wal_->segment_size) {
        return Drop(Error(ErrorCode::kRefused,
                          spec_.name + " refused: " + std::to_string(raw_size) +
                              " bytes, but its WAL header says segments are " +
                              std::to_string(wal_->segment_size) + " bytes"));
      }
    }
    if (data_length_ == 0 && shared_->format != StoreFormat::kRaw) {
      // An empty stream still becomes a valid .zst/.gz file.
      if (!recompressor_) {
        auto r = internal::Recompressor::Make(shared_->format);
        if (!r.ok()) return Drop(r.error());
        recompressor_ = std::move(r).value();
      }
      auto frame = recompressor_->Compress({});
      if (!frame.ok()) return Drop(frame.error());
      auto st = io_->WriteAt(data_fd_.get(), *frame, 0, DataShown());
      if (!st.ok()) return Fail(st.error());
      data_length_ = frame->size();
    }
    if (auto st = Fsync(data_fd_.get(), DataShown()); !st.ok()) return Fail(st.error());

    if (auto st = internal::CheckHistoryData(shared_->incoming_fd.get(), data_name_, shared_->format, spec_.name);
        !st.ok()) {
      return Drop(Error(ErrorCode::kRefused, spec_.name + " refused: " + st.error().message()));
    }
    if (is_segment_) {
      std::lock_guard lk(shared_->sysid_mu);
      auto st = RecordSysid(wal_->system_id);
      if (!st.ok()) return st.error().code() == ErrorCode::kNoSpace ? Fail(st.error()) : Drop(st.error());
    }

    if (auto existing = FindStored(dest_fd_.get(), spec_.name)) return CompareExisting(*existing);
    const std::string final_name = spec_.name + std::string(StoreSuffix(shared_->format));
    auto placed = RenameDurable(*shared_->fs, data_fd_.get(), shared_->incoming_fd.get(),
                                data_name_, dest_fd_.get(), final_name, Replace::kNo, dest_shown_);
    if (!placed.ok() && placed.error().code() == ErrorCode::kExists) {
      if (auto existing = FindStored(dest_fd_.get(), spec_.name)) return CompareExisting(*existing);
      return Drop(Error(ErrorCode::kRefused, dest_shown_ +
                                                 " exists but is not a regular file (a symlink?);"
                                                 " nothing stored, original kept"));
    }
    if (!placed.ok() && !IsPlaced(final_name)) return Fail(placed.error());
    placed_ = true;
    if (!placed.ok()) {
      // The file is complete under its final name; only the directory entry's
      // durability is in doubt. Report it so the sender retries (and then
      // meets kAlreadyIdentical).
      RemoveTemp();
      return placed.error();
    }
    RemoveTemp();
    return CommitOutcome::kPlaced;
  }

  void Abandon() override {
    if (!finished_) RemoveTemp();
  }

  Status ReadDurable(ByteSink& sink) override {
    WF_TRY(CheckOpen());
    return internal::ReadDataPrefix(data_fd_.get(), DataShown(), shared_->format, sink);
  }

 private:
  std::string DataShown() const { return shared_->IncomingPath(data_name_); }

  Status CheckOpen() const {
    if (finished_) {
      return Error(ErrorCode::kInternal, "transfer of " + spec_.name + " already finished");
    }
    return Status::Ok();
  }

  Status CheckFirstChunk(std::span<const std::byte> raw) {
    auto info = ParseWalHeader(raw);
    if (!info.ok()) {
      return Drop(Error(ErrorCode::kRefused, spec_.name + " refused: " + info.error().message()));
    }
    auto st = CheckWalName(*info, spec_.name);
    if (!st.ok()) return Drop(st.error());
    WalPageCheck pages(*info, SegmentNameTimeline(spec_.name));
    st = pages.Feed(raw);
    if (!st.ok()) return Drop(Error(ErrorCode::kRefused, spec_.name + " refused: " + st.error().message()));
    if (spec_.raw_size >= 0 && static_cast<std::uint64_t>(spec_.raw_size) != info->segment_size) {
      return Drop(Error(ErrorCode::kRefused,
                        spec_.name + " refused: " + std::to_string(spec_.raw_size) +
                            " bytes, but its WAL header says segments are " +
                            std::to_string(info->segment_size) + " bytes"));
    }
    auto have = ReadSysid(*shared_->fs, cluster_fd_.get(), Join(shared_->Path(spec_.cluster), kSysidFile));
    if (!have.ok()) return Drop(have.error());
    if (*have && **have != info->system_id) return Drop(SysidMismatch(info->system_id, **have));
    wal_ = *info;
    return Status::Ok();
  }

  // Called with sysid_mu held.
  Status RecordSysid(std::uint64_t id) {
    const std::string shown = Join(shared_->Path(spec_.cluster), kSysidFile);
    WF_ASSIGN(auto have, ReadSysid(*shared_->fs, cluster_fd_.get(), shown));
    if (have) return *have == id ? Status::Ok() : Status(SysidMismatch(id, *have));
    // A unique temp name and RenameDurable(no replace): two receiver processes
    // recording at once never share a temp file, and exactly one wins.
    auto st = WriteAtomic(*shared_->fs, cluster_fd_.get(), kSysidFile, std::to_string(id) + "\n",
                          0600, Replace::kNo, shown);
    if (st.ok() || st.error().code() != ErrorCode::kExists) return st;
    // Another receiver process recorded one first.
    WF_ASSIGN(have, ReadSysid(*shared_->fs, cluster_fd_.get(), shown));
    if (have && *have == id) return Status::Ok();
    return have ? Status(SysidMismatch(id, *have)) : st;
  }

  Result<CommitOutcome> CompareExisting(StoreFormat existing) {
    const std::string file = spec_.name + std::string(StoreSuffix(existing));
    const std::string shown = Join(Join(shared_->Path(spec_.cluster), KindDir(kind_)), file);
    Hash128 ours = hash_.Digest();
    auto fd = OpenAt(dest_fd_.get(), file, O_RDONLY | O_NOFOLLOW);
    Result<std::pair<std::uint64_t, Hash128>> theirs =
        fd.ok() ? internal::HashStored(fd->get(), shown, existing)
                : Result<std::pair<std::uint64_t, Hash128>>(fd.error());
    if (theirs.ok() && theirs->first == raw_offset_ && theirs->second == ours) {
      RemoveTemp();
      return CommitOutcome::kAlreadyIdentical;
    }
    // Moves the temp data to the quarantine; RemoveTemp below finds it gone.
    internal::Conflict c{cluster_fd_.get(), shared_->Path(spec_.cluster), shared_->incoming_fd.get(),
                         data_name_, shared_->format, dest_fd_.get(), file, existing, spec_.name,
                         raw_offset_, ours, shared_->quarantine_cap.load()};
    std::string details = internal::HandleConflict(c);
    RemoveTemp();
    return Error(ErrorCode::kExistsDifferent,
                 spec_.name + " already archived with different content; original kept; " + details);
  }

  // Whether the final name holds our data file (a RenameDurable that failed
  // after its rename, at the directory fsync).
  bool IsPlaced(const std::string& final_name) const {
    struct stat ours{}, there{};
    return ::fstat(data_fd_.get(), &ours) == 0 &&
           ::fstatat(dest_fd_.get(), final_name.c_str(), &there, AT_SYMLINK_NOFOLLOW) == 0 &&
           ours.st_dev == there.st_dev && ours.st_ino == there.st_ino;
  }

  // Removes temp data and manifest; the transfer is over.
  void RemoveTemp() {
    int dfd = shared_->incoming_fd.get();
    if (!placed_) (void)shared_->fs->Unlink(dfd, data_name_.c_str());
    (void)shared_->fs->Unlink(dfd, state_name_.c_str());
    finished_ = true;
  }

  Error Drop(Error e) {
    RemoveTemp();
    return e;
  }

  // For write/sync errors: a full disk drops the temp data (the sender exits
  // non-zero and retries later from zero); other errors keep it for resume.
  Error Fail(Error e) {
    if (e.code() != ErrorCode::kNoSpace) return e;
    RemoveTemp();
    return Error(ErrorCode::kNoSpace,
                 "receiver disk full under " + shared_->root + " while storing " + spec_.name +
                     " (" + e.message() + "); temp data removed, free space and retry");
  }

  std::shared_ptr<Shared> shared_;
  TransferSpec spec_;
  EntryKind kind_;
  bool is_segment_;
  Registration reg_;
  UniqueFd cluster_fd_, dest_fd_, data_fd_;
  std::unique_ptr<FileIo> io_;
  std::unique_ptr<internal::Recompressor> recompressor_;
  const std::string data_name_, state_name_, dest_shown_;
  Xxh3Stream hash_;
  std::uint64_t next_chunk_ = 0, durable_chunks_ = 0, raw_offset_ = 0, data_length_ = 0;
  std::optional<WalSegmentInfo> wal_;
  bool manifest_written_ = false;
  bool finished_ = false;
  bool placed_ = false;
};

class ArchiveImpl final : public Archive {
 public:
  explicit ArchiveImpl(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  StoreFormat format() const override { return shared_->format; }
  void SetQuarantineCap(std::uint64_t bytes) override { shared_->quarantine_cap.store(bytes); }
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
              OpenDirAt(shared_->root_fd.get(), spec.cluster, cluster_shown, true));
    WF_ASSIGN(UniqueFd dest_fd, OpenDirAt(cluster_fd.get(), std::string(KindDir(kind)),
                                          Join(cluster_shown, KindDir(kind)), true));

    const std::string data_name = spec.transfer_id + ".data";
    const std::string data_shown = shared_->IncomingPath(data_name);
    int raw_fd = ::openat(shared_->incoming_fd.get(), data_name.c_str(),
                          O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
    if (raw_fd < 0) {
      if (errno == ELOOP) {
        return Error(ErrorCode::kRefused, data_shown + " is a symlink; refusing to follow it");
      }
      return ErrnoError(errno, "open " + data_shown);
    }
    UniqueFd data_fd(raw_fd);
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

    auto incoming = std::make_unique<IncomingImpl>(shared_, spec, kind, std::move(reg),
                                                   std::move(cluster_fd), std::move(dest_fd),
                                                   std::move(data_fd));
    auto started = incoming->Start(manifest);
    if (!started.ok()) {
      if (started.error().code() == ErrorCode::kNoSpace) incoming->Abandon();
      return started.error();
    }
    return std::unique_ptr<Incoming>(std::move(incoming));
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
      if (::unlinkat(dfd, file.c_str(), 0) != 0 && errno != ENOENT) {
        return ErrnoError(errno, "remove " + shared_->IncomingPath(file));
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
                                           shared->Path(kIncomingDir), true));
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
