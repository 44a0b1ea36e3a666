// The incoming writer: durable, atomic placement of received files (the
// archive contract; core/fs.h RenameDurable for the rename).
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

namespace walferry::archive::internal {

namespace {

using walfmt::CheckWalName;
using walfmt::IsWalSegmentName;
using walfmt::ParseWalHeader;
using walfmt::SegmentNameTimeline;
using walfmt::WalPageCheck;
using walfmt::WalSegmentInfo;


class IncomingImpl final : public Incoming {
 public:
  IncomingImpl(std::shared_ptr<Shared> shared, TransferSpec spec, EntryKind kind,
               Registration reg, UniqueFd cluster_fd, UniqueFd dest_fd, UniqueFd data_fd)
      : shared_(std::move(shared)),
        spec_(std::move(spec)),
        kind_(kind),
        // A .partial is its segment's bytes: checked as that segment.
        wal_name_(IsWalSegmentName(spec_.name) ? std::string(spec_.name)
                                               : std::string(walfmt::PartialSegmentName(spec_.name))),
        is_segment_(!wal_name_.empty()),
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
      (void)shared_->fs->Unlink(shared_->incoming_fd.get(), state_name_.c_str());  // ENOENT: none
    }
    if (static_cast<std::uint64_t>(st.st_size) != data_length_) {
      if (int err = shared_->fs->Ftruncate(data_fd_.get(), static_cast<off_t>(data_length_)); err != 0) {
        return ErrnoError(err, "truncate " + DataShown());
      }
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
    auto st = WriteAllAt(*shared_->fs, *io_, data_fd_.get(), out, static_cast<off_t>(data_length_), DataShown());
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
    if (int err = shared_->fs->Fdatasync(data_fd_.get()); err != 0) {
      return Fail(ErrnoError(err, "fdatasync " + DataShown()));
    }
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
      auto st = WriteAllAt(*shared_->fs, *io_, data_fd_.get(), *frame, 0, DataShown());
      if (!st.ok()) return Fail(st.error());
      data_length_ = frame->size();
    }
    // No fsync of the data here: RenameDurable (placement) and the quarantine
    // fsync it first, and nothing before them needs it on disk.

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
    auto st = CheckWalName(*info, wal_name_);
    if (!st.ok() && wal_name_ != spec_.name) {
      return Drop(Error(st.error().code(), spec_.name + ": " + st.error().message()));
    }
    if (!st.ok()) return Drop(st.error());
    WalPageCheck pages(*info, SegmentNameTimeline(wal_name_));
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
                         raw_offset_, ours, shared_->quarantine_cap.load(), shared_->fs, data_fd_.get()};
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
  const std::string wal_name_;  // the segment name (of a .partial too); "" when not a segment
  const bool is_segment_;
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

}  // namespace

Result<std::unique_ptr<Incoming>> StartIncoming(std::shared_ptr<Shared> shared, const TransferSpec& spec,
                                               EntryKind kind, Registration reg, UniqueFd cluster_fd,
                                               UniqueFd dest_fd, UniqueFd data_fd,
                                               const std::optional<Manifest>& manifest) {
    auto incoming = std::make_unique<IncomingImpl>(std::move(shared), spec, kind, std::move(reg),
                                                   std::move(cluster_fd), std::move(dest_fd),
                                                   std::move(data_fd));
    auto started = incoming->Start(manifest);
    if (!started.ok()) {
      if (started.error().code() == ErrorCode::kNoSpace) incoming->Abandon();
      return started.error();
    }
    return std::unique_ptr<Incoming>(std::move(incoming));
}

}  // namespace walferry::archive::internal
