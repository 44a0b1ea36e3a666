// One transfer into the S3 archive (archive::Incoming): chunks spooled on the
// gateway's disk, parts uploaded as the spool grows, the final object placed by
// a conditional PUT. The rules are in s3_archive.h.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "archive/store_codec.h"
#include "core/io.h"
#include "core/names.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"
#include "store_s3/s3_internal.h"

namespace walferry::store_s3 {
namespace {

class S3Incoming final : public archive::Incoming {
 public:
  S3Incoming(std::shared_ptr<Shared> sh, archive::TransferSpec spec, EntryKind kind)
      : sh_(std::move(sh)), spec_(std::move(spec)), kind_(kind) {
    st_.transfer_id = spec_.transfer_id;
    st_.cluster = spec_.cluster;
    st_.name = spec_.name;
    is_segment_ = walfmt::IsWalSegmentName(spec_.name);
    final_key_ = sh_->Key(spec_.cluster + "/" + std::string(KindDir(kind_)) + "/" + spec_.name +
                          std::string(archive::StoreSuffix(sh_->opts.format)));
    // Small transfers of known size stay in memory until Commit.
    in_memory_ok_ = spec_.raw_size >= 0 && static_cast<std::uint64_t>(spec_.raw_size) <= sh_->opts.part_size;
  }
  ~S3Incoming() override {
    std::lock_guard l(sh_->mu);
    sh_->active.erase(spec_.transfer_id);
    sh_->active.erase(spec_.cluster + "/" + spec_.name);
    if (!st_.upload_id.empty()) sh_->active.erase("upload:" + st_.upload_id);
  }

  // Opens the spool (flock'ed) and loads a resume state that the store confirms.
  Status Open() {
    const std::string spool = spec_.transfer_id + ".spool";
    WF_ASSIGN(spool_fd_, OpenAt(sh_->state_fd.get(), spool, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
    if (::flock(spool_fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      return Error(ErrorCode::kRefused, spec_.name + ": transfer in progress in another receiver process");
    }
    State loaded;
    std::string text;
    if (ReadState(&text) && Deserialize(text, &loaded) && loaded.cluster == spec_.cluster &&
        loaded.name == spec_.name && loaded.transfer_id == spec_.transfer_id && hash_.Restore(loaded.hash_state)) {
      bool parts_ok = true;
      if (!loaded.upload_id.empty()) {
        WF_ASSIGN(auto c, sh_->pool->Acquire());
        auto parts = c->ListParts(loaded.body_key, loaded.upload_id);
        parts_ok = parts.ok() && parts->size() >= loaded.parts.size();
        for (std::size_t i = 0; parts_ok && i < loaded.parts.size(); ++i) {
          parts_ok = (*parts)[i].number == loaded.parts[i].number && (*parts)[i].etag == loaded.parts[i].etag;
        }
      }
      struct stat sb{};
      if (parts_ok && ::fstat(spool_fd_.get(), &sb) == 0 && static_cast<std::uint64_t>(sb.st_size) >= loaded.spool_len &&
          ::ftruncate(spool_fd_.get(), static_cast<off_t>(loaded.spool_len)) == 0) {
        if (::lseek(spool_fd_.get(), static_cast<off_t>(loaded.spool_len), SEEK_SET) < 0) {
          return ErrnoError(errno, "seek spool of " + spec_.name);
        }
        st_ = loaded;
        resumed_ = true;
        std::lock_guard l(sh_->mu);
        if (!st_.upload_id.empty()) sh_->active.insert("upload:" + st_.upload_id);
        return Status::Ok();
      }
      hash_.Reset();
    }
    // A fresh start: nothing trusted.
    hash_.Reset();
    if (::ftruncate(spool_fd_.get(), 0) != 0) return ErrnoError(errno, "truncate spool of " + spec_.name);
    st_ = State{spec_.transfer_id, spec_.cluster, spec_.name};
    return Status::Ok();
  }

  std::uint64_t next_chunk() const override { return st_.chunks + pending_chunks_; }
  std::uint64_t next_raw_offset() const override { return st_.raw_offset + pending_raw_; }

  Status Append(std::uint64_t index, std::span<const std::byte> raw, compress::Algorithm frame_algorithm,
                std::span<const std::byte> frame) override {
    if (finished_) return Error(ErrorCode::kInternal, spec_.name + ": transfer already ended");
    if (index != next_chunk()) {
      return Error(ErrorCode::kProtocol, spec_.name + ": chunk " + std::to_string(index) + " out of order (expected " +
                                             std::to_string(next_chunk()) + ")");
    }
    if (is_segment_ && index == 0) WF_TRY(CheckSegment(raw));
    std::span<const std::byte> stored = raw;
    if (sh_->opts.format != StoreFormat::kRaw) {
      if (archive::StoreAlgorithm(sh_->opts.format) != frame_algorithm || frame.empty()) {
        if (!recompressor_) {
          auto r = archive::Recompressor::Make(sh_->opts.format);
          if (!r.ok()) return Drop(r.error());
          recompressor_ = std::move(r).value();
        }
        auto f = recompressor_->Compress(raw);
        if (!f.ok()) return Drop(f.error());
        stored = *f;
      } else {
        stored = frame;
      }
    }
    pending_.insert(pending_.end(), stored.begin(), stored.end());
    hash_.Update(raw);
    pending_chunks_ += 1;
    pending_raw_ += raw.size();
    return Status::Ok();
  }

  Result<std::uint64_t> Sync() override {
    if (finished_) return Error(ErrorCode::kInternal, spec_.name + ": transfer already ended");
    if (pending_chunks_ == 0) return st_.chunks;
    if (in_memory_ok_ && !deferred_once_) {  // the sender's window still holds these chunks
      deferred_once_ = true;
      return st_.chunks;
    }
    deferred_once_ = false;
    WF_TRY(WriteFull(spool_fd_.get(), pending_, "spool of " + spec_.name));
    WF_TRY(Fsync(spool_fd_.get(), "spool of " + spec_.name));
    st_.spool_len += pending_.size();
    st_.chunks += pending_chunks_;
    st_.raw_offset += pending_raw_;
    pending_.clear();
    pending_chunks_ = pending_raw_ = 0;
    st_.hash_state = hash_.Save();
    if (st_.spool_len - Uploaded() >= sh_->opts.part_size) WF_TRY(UploadSpoolAsPart());
    WF_TRY(SaveState());
    return st_.chunks;
  }

  Result<CommitOutcome> Commit(std::uint64_t raw_size, const Hash128& raw_hash) override {
    if (finished_) return Error(ErrorCode::kInternal, spec_.name + ": transfer already ended");
    const std::uint64_t total = next_raw_offset();
    if (total != raw_size || hash_.Digest() != raw_hash) {
      return Drop(Error(ErrorCode::kCorrupt, spec_.name + ": received " + std::to_string(total) +
                                                 " bytes whose XXH3-128 does not match the sender's (" +
                                                 std::to_string(raw_size) + " bytes)"));
    }
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    if (is_segment_) {
      Status s = RecordSysid(*c);
      if (!s.ok()) return Drop(s.error());
    }
    // Another store format of the same name counts as existing too.
    WF_ASSIGN(auto existing, ExistingFinal(*c));
    if (!existing.empty()) return CompareWith(*c, existing, raw_size, raw_hash, "");
    s3::Metadata meta{{kMetaSize, std::to_string(raw_size)}, {kMetaHash, raw_hash.Hex()}};
    if (st_.upload_id.empty()) {
      // One PUT: spool (if any) + what is in memory.
      std::vector<std::byte> body;
      WF_TRY(ReadSpool(&body));
      body.insert(body.end(), pending_.begin(), pending_.end());
      Status put = c->Put(final_key_, body, meta, /*if_none_match=*/true);
      if (put.ok()) return Done(CommitOutcome::kPlaced);
      if (put.error().code() == ErrorCode::kExists) return CompareWith(*c, final_key_, raw_size, raw_hash, "");
      return put.error();  // kNetwork etc.: resumable (spool and state kept)
    }
    // Parts: the rest as the last part, complete under the body key, then the marker.
    std::vector<std::byte> last;
    WF_TRY(ReadSpool(&last));
    last.insert(last.end(), pending_.begin(), pending_.end());
    if (!last.empty()) {
      WF_ASSIGN(std::string etag, c->UploadPart(st_.body_key, st_.upload_id, NextPartNumber(), last));
      st_.parts.push_back({NextPartNumber(), etag, last.size()});
    }
    WF_TRY(c->CompleteMultipart(st_.body_key, st_.upload_id, st_.parts));
    meta[kMetaData] = st_.body_key;
    Status put = c->Put(final_key_, {}, meta, true);
    if (put.ok()) return Done(CommitOutcome::kPlaced);
    if (put.error().code() == ErrorCode::kExists) return CompareWith(*c, final_key_, raw_size, raw_hash, st_.body_key);
    (void)c->Delete(st_.body_key);
    return Drop(put.error());
  }

  void Abandon() override {
    if (finished_) return;
    if (!st_.upload_id.empty()) {
      if (auto c = sh_->pool->Acquire(); c.ok()) (void)(*c)->AbortMultipart(st_.body_key, st_.upload_id);
    }
    RemoveLocal();
  }

 private:
  Status CheckSegment(std::span<const std::byte> raw) {
    auto info = walfmt::ParseWalHeader(raw);
    if (!info.ok()) return Drop(Error(ErrorCode::kRefused, spec_.name + " refused: " + info.error().message()));
    if (auto s = walfmt::CheckWalName(*info, spec_.name); !s.ok()) return Drop(s.error());
    if (spec_.raw_size >= 0 && static_cast<std::uint64_t>(spec_.raw_size) != info->segment_size) {
      return Drop(Error(ErrorCode::kRefused, spec_.name + " refused: " + std::to_string(spec_.raw_size) +
                                                 " bytes, but its WAL header says segments are " +
                                                 std::to_string(info->segment_size) + " bytes"));
    }
    st_.wal_sysid = info->system_id;
    return Status::Ok();
  }

  Status RecordSysid(s3::Client& c) {
    {
      std::lock_guard l(sh_->mu);
      auto it = sh_->sysids.find(spec_.cluster);
      if (it != sh_->sysids.end() && it->second == st_.wal_sysid) return Status::Ok();
    }
    const std::string key = sh_->Key(spec_.cluster + "/system_identifier");
    const std::string mine = std::to_string(st_.wal_sysid) + "\n";
    auto remember = [&] {
      std::lock_guard l(sh_->mu);
      sh_->sysids[spec_.cluster] = st_.wal_sysid;
      return Status::Ok();
    };
    Status put = c.Put(key, Bytes(mine), {}, true);
    if (put.ok()) return remember();
    if (put.error().code() != ErrorCode::kExists) return put;
    WF_ASSIGN(std::string have, c.GetRange(key, 0, 64));
    if (have == mine) return remember();
    while (!have.empty() && have.back() == '\n') have.pop_back();
    return Error(ErrorCode::kRefused, "WAL from a different cluster (system identifier " +
                                          std::to_string(st_.wal_sysid) + ", archive has " + have + ")");
  }

  Result<std::string> ExistingFinal(s3::Client& c) {
    const std::string dir = sh_->Key(spec_.cluster + "/" + std::string(KindDir(kind_)) + "/");
    WF_ASSIGN(s3::ListPage page, c.List(dir + spec_.name, "", 10));
    for (const auto& o : page.objects) {
      if (SplitSuffix(std::string_view(o.key).substr(dir.size())).first == spec_.name) return o.key;
    }
    return std::string();
  }

  Result<CommitOutcome> CompareWith(s3::Client& c, const std::string& key, std::uint64_t size, const Hash128& h,
                                    const std::string& our_body) {
    auto same = SameContent(c, key, size, h);
    if (!our_body.empty()) (void)c.Delete(our_body);
    if (!same.ok()) return Drop(same.error().Wrap(spec_.name + " exists; comparing failed"));
    if (*same) return Done(CommitOutcome::kAlreadyIdentical);
    return Drop(Error(ErrorCode::kExistsDifferent, spec_.name + " already archived with different content; original kept"));
  }

  int NextPartNumber() const { return st_.parts.empty() ? 1 : st_.parts.back().number + 1; }

  Status UploadSpoolAsPart() {
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    if (st_.upload_id.empty()) {
      st_.body_key = sh_->Key(spec_.cluster + "/.data/" + spec_.name + "." + spec_.transfer_id + "." + RandomHex(4));
      WF_ASSIGN(st_.upload_id, c->CreateMultipart(st_.body_key, {}));
      std::lock_guard l(sh_->mu);
      sh_->active.insert("upload:" + st_.upload_id);
    }
    std::vector<std::byte> body;
    WF_TRY(ReadSpool(&body));
    WF_ASSIGN(std::string etag, c->UploadPart(st_.body_key, st_.upload_id, NextPartNumber(), body));
    st_.parts.push_back({NextPartNumber(), etag, body.size()});
    // The spool keeps the uploaded bytes too: ReadDurable (the receiver's
    // content check on resume) reads them back; parts in an unfinished
    // upload cannot be read from the store.
    return SaveState();
  }

  std::uint64_t Uploaded() const {
    std::uint64_t n = 0;
    for (const auto& p : st_.parts) n += p.size;
    return n;
  }

 public:
  Status ReadDurable(ByteSink& sink) override {
    if (::lseek(spool_fd_.get(), 0, SEEK_SET) != 0) return ErrnoError(errno, "seek spool of " + spec_.name);
    Status st = archive::ReadStored(spool_fd_.get(), "spool of " + spec_.name, sh_->opts.format, sink);
    if (::lseek(spool_fd_.get(), static_cast<off_t>(st_.spool_len), SEEK_SET) < 0) {
      return ErrnoError(errno, "seek spool of " + spec_.name);
    }
    return st;
  }

 private:

  // The spooled bytes not yet uploaded as a part.
  Status ReadSpool(std::vector<std::byte>* out) {
    const std::uint64_t from = Uploaded();
    out->resize(st_.spool_len - from);
    if (out->empty()) return Status::Ok();
    WF_ASSIGN(std::size_t n, PreadFull(spool_fd_.get(), *out, static_cast<off_t>(from), "spool of " + spec_.name));
    if (n != out->size()) return Error(ErrorCode::kIo, "spool of " + spec_.name + " is short");
    ::lseek(spool_fd_.get(), static_cast<off_t>(st_.spool_len), SEEK_SET);
    return Status::Ok();
  }

  bool ReadState(std::string* text) {
    auto fd = OpenAt(sh_->state_fd.get(), spec_.transfer_id + ".s3state", O_RDONLY | O_NOFOLLOW);
    if (!fd.ok()) return false;
    char buf[65536];
    ssize_t n = ::pread(fd->get(), buf, sizeof buf, 0);
    if (n <= 0) return false;
    text->assign(buf, static_cast<std::size_t>(n));
    return true;
  }

  Status SaveState() {
    const std::string name = spec_.transfer_id + ".s3state", tmp = name + ".tmp";
    std::string text = Serialize(st_);
    {
      WF_ASSIGN(UniqueFd fd, OpenAt(sh_->state_fd.get(), tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
      WF_TRY(WriteFull(fd.get(), Bytes(text), "resume state of " + spec_.name));
      WF_TRY(Fsync(fd.get(), "resume state of " + spec_.name));
    }
    if (::renameat(sh_->state_fd.get(), tmp.c_str(), sh_->state_fd.get(), name.c_str()) != 0) {
      return ErrnoError(errno, "rename resume state of " + spec_.name);
    }
    return Fsync(sh_->state_fd.get(), "state directory");
  }

  void RemoveLocal() {
    ::unlinkat(sh_->state_fd.get(), (spec_.transfer_id + ".s3state").c_str(), 0);
    ::unlinkat(sh_->state_fd.get(), (spec_.transfer_id + ".spool").c_str(), 0);
    finished_ = true;
  }
  Result<CommitOutcome> Done(CommitOutcome o) {
    RemoveLocal();
    return o;
  }
  Error Drop(Error e) {
    if (!st_.upload_id.empty()) {
      if (auto c = sh_->pool->Acquire(); c.ok()) (void)(*c)->AbortMultipart(st_.body_key, st_.upload_id);
    }
    RemoveLocal();
    return e;
  }

  std::shared_ptr<Shared> sh_;
  archive::TransferSpec spec_;
  EntryKind kind_;
  State st_;
  std::string final_key_;
  bool is_segment_ = false, in_memory_ok_ = false, deferred_once_ = false, finished_ = false, resumed_ = false;
  UniqueFd spool_fd_;
  Xxh3Stream hash_;
  std::vector<std::byte> pending_;
  std::uint64_t pending_chunks_ = 0, pending_raw_ = 0;
  std::unique_ptr<archive::Recompressor> recompressor_;
};

bool IsHex32(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

Result<std::unique_ptr<archive::Incoming>> BeginTransfer(const std::shared_ptr<Shared>& sh,
                                                        const archive::TransferSpec& spec) {
  if (sh->state_fd.get() < 0) return Error(ErrorCode::kInternal, sh->Url() + " was opened for reading only");
  WF_TRY(ValidateClusterName(spec.cluster));
  WF_ASSIGN(EntryKind kind, archive::ClassifyName(spec.name));
  if (!IsHex32(spec.transfer_id)) return Error(ErrorCode::kProtocol, "transfer id is not 32 hex digits");
  if (sh->opts.format == StoreFormat::kRaw && kind == EntryKind::kFile &&
      (spec.name.ends_with(".zst") || spec.name.ends_with(".gz"))) {
    return Error(ErrorCode::kRefused, spec.name + ": a raw store cannot hold names ending in .zst/.gz");
  }
  const std::string key = spec.cluster + "/" + spec.name;
  {
    std::lock_guard l(sh->mu);
    if (sh->active.count(key) || sh->active.count(spec.transfer_id)) {
      return Error(ErrorCode::kRefused, spec.name + ": transfer in progress");
    }
    sh->active.insert(key);
    sh->active.insert(spec.transfer_id);
  }
  auto in = std::make_unique<S3Incoming>(sh, spec, kind);
  WF_TRY(in->Open());
  return std::unique_ptr<archive::Incoming>(std::move(in));
}

}  // namespace walferry::store_s3
