// Same name, different content: the forensic side of the archive contract.
//
// Commit refuses the newcomer and keeps the original (archive.cc). Here the
// two copies are compared (first differing byte, the LSN it maps to, both
// XXH3-128 hashes and system identifiers), a likely cause is named, and the
// newcomer is kept under <cluster>/quarantine/ with a .info file beside it,
// within a per-cluster size cap. The same newcomer offered again (PostgreSQL
// retries archive_command forever) is kept once.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/fd.h"
#include "core/fs.h"
#include "core/hash.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"

namespace walferry::archive {

using walfmt::IsWalSegmentName;
using walfmt::ParseWalHeader;
using walfmt::SegmentNameTimeline;
using walfmt::WalSegmentInfo;

namespace {

constexpr char kQuarantineDir[] = "quarantine";
constexpr char kInfoSuffix[] = ".info";
constexpr std::uint64_t kCompareLimit = 64u << 20;  // the stored copy held in memory for the comparison
constexpr std::size_t kHead = 40;                   // XLogLongPageHeaderData

// Collects a stored entry's raw bytes, up to a limit.
class VectorSink final : public ByteSink {
 public:
  explicit VectorSink(std::vector<std::byte>& out) : out_(out) {}
  Status Write(std::span<const std::byte> data) override {
    if (out_.size() + data.size() > kCompareLimit) {
      return Error(ErrorCode::kNoSpace, "larger than " + std::to_string(kCompareLimit >> 20) + " MiB");
    }
    out_.insert(out_.end(), data.begin(), data.end());
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }

 private:
  std::vector<std::byte>& out_;
};

// Streams the newcomer past the stored copy: first differing offset, head, size.
class DiffSink final : public ByteSink {
 public:
  explicit DiffSink(const std::vector<std::byte>* old) : old_(old) {}
  Status Write(std::span<const std::byte> data) override {
    if (head_.size() < kHead) {
      std::size_t take = std::min(kHead - head_.size(), data.size());
      head_.insert(head_.end(), data.begin(), data.begin() + static_cast<std::ptrdiff_t>(take));
    }
    if (old_ && diff_ < 0) {
      for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint64_t at = size_ + i;
        if (at >= old_->size() || (*old_)[at] != data[i]) {
          diff_ = static_cast<std::int64_t>(at);
          break;
        }
      }
    }
    size_ += data.size();
    return Status::Ok();
  }
  Status Finish() override {
    if (old_ && diff_ < 0 && size_ != old_->size()) diff_ = static_cast<std::int64_t>(size_);
    return Status::Ok();
  }
  std::int64_t diff() const { return diff_; }
  const std::vector<std::byte>& head() const { return head_; }

 private:
  const std::vector<std::byte>* old_;
  std::vector<std::byte> head_;
  std::uint64_t size_ = 0;
  std::int64_t diff_ = -1;
};

std::string Lsn(std::uint64_t v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(v >> 32), static_cast<unsigned>(v));
  return buf;
}

// The 24-hex segment a WAL name is about: itself, or the stem of NAME.partial.
std::string_view SegmentOf(std::string_view name) {
  if (name.size() == 32 && name.ends_with(".partial")) name = name.substr(0, 24);
  return IsWalSegmentName(name) ? name : std::string_view();
}

std::optional<WalSegmentInfo> Header(std::string_view name, std::span<const std::byte> head) {
  if (SegmentOf(name).empty()) return std::nullopt;
  auto info = ParseWalHeader(head);
  if (!info.ok()) return std::nullopt;
  return *info;
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Result<std::uint64_t> DirBytes(int dfd) {
  int dup = ::dup(dfd);
  if (dup < 0) return ErrnoError(errno, "dup");
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return ErrnoError(errno, "opendir quarantine");
  }
  ::rewinddir(d);
  std::uint64_t total = 0;
  while (dirent* e = ::readdir(d)) {
    struct stat st{};
    if (e->d_name[0] == '.') continue;
    if (::fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<std::uint64_t>(st.st_size);
    }
  }
  ::closedir(d);
  return total;
}

}  // namespace

std::string LikelyConflictCause(std::string_view name, const std::optional<WalSegmentInfo>& stored,
                                const std::optional<WalSegmentInfo>& incoming, std::int64_t diff,
                                std::uint64_t lsn) {
  const std::string_view seg = SegmentOf(name);
  if (!seg.empty()) {
    const std::uint32_t tli = SegmentNameTimeline(seg);
    if (stored && incoming && stored->system_id != incoming->system_id) {
      return "WAL of another database system under this cluster's name (two clusters share one "
             "client certificate or --cluster)";
    }
    if (stored && incoming && stored->timeline != incoming->timeline) {
      return "the copies begin on different timelines: servers promoted to timeline " +
             std::to_string(tli) + " from different points (split brain)";
    }
    const std::string from = diff >= 0 ? " from LSN " + Lsn(lsn) : "";
    if (tli == 1) {
      return "two servers wrote timeline 1" + from +
             ": a promotion without a timeline change (a standby started as a primary, or a copy "
             "of the primary) while the primary kept writing (split brain)";
    }
    return "two servers wrote timeline " + std::to_string(tli) + from +
           ": split brain (two standbys promoted to the same timeline), or a repeated PITR or "
           "promotion onto timeline " + std::to_string(tli) + " whose history file was not in the archive";
  }
  if (name.ends_with(".history")) {
    return "two promotions chose timeline " + std::string(name.substr(0, name.size() - 8)) +
           " with different histories: split brain, or a PITR that promoted onto a timeline whose "
           "history file was not in the archive";
  }
  if (name.ends_with(".backup")) {
    return "two base backups on different servers started at the same WAL position (split brain)";
  }
  return "a different file under a name already used in this cluster";
}

namespace internal {

std::string HandleConflict(const Conflict& c) {
  // The stored copy, in memory (bounded), then the newcomer streamed past it.
  std::vector<std::byte> old;  // the stored copy, or its first 64 MiB
  bool old_complete = false;
  std::optional<std::string> old_unread;
  Hash128 old_hash{};
  {
    auto fd = OpenAt(c.dest_fd, c.stored_file, O_RDONLY | O_NOFOLLOW);
    if (!fd.ok()) {
      old_unread = fd.error().message();
    } else {
      VectorSink sink(old);
      if (ReadStored(fd->get(), c.stored_file, c.stored_format, sink).ok()) {
        old_complete = true;
        old_hash = Xxh3_128(old);
      } else {
        auto again = OpenAt(c.dest_fd, c.stored_file, O_RDONLY | O_NOFOLLOW);
        auto h = again.ok() ? HashStored(again->get(), c.stored_file, c.stored_format)
                            : Result<std::pair<std::uint64_t, Hash128>>(again.error());
        if (h.ok()) {
          old_hash = h->second;
        } else {
          old_unread = h.error().message();
        }
      }
    }
  }
  DiffSink diff(old_complete ? &old : nullptr);
  {
    auto fd = OpenAt(c.incoming_fd, c.data_name, O_RDONLY | O_NOFOLLOW);
    if (fd.ok()) (void)ReadStored(fd->get(), c.data_name, c.data_format, diff);
  }
  auto old_info = Header(c.name, old);
  auto new_info = Header(c.name, diff.head());
  const std::uint64_t lsn =
      old_info && diff.diff() >= 0 ? old_info->page_address + static_cast<std::uint64_t>(diff.diff()) : 0;

  std::string facts;
  if (diff.diff() >= 0) {
    facts += "first difference at byte " + std::to_string(diff.diff());
    if (old_info) facts += " (LSN " + Lsn(lsn) + ")";
  } else if (old_unread) {
    facts += "stored copy unreadable: " + *old_unread;
  } else {
    facts += "copies not compared byte by byte (stored copy larger than 64 MiB)";
  }
  facts += "; XXH3-128 archive " + (old_unread ? std::string("?") : old_hash.Hex()) + ", newcomer " +
           c.new_hash.Hex();
  if (old_info || new_info) {
    facts += "; system identifier archive " + (old_info ? std::to_string(old_info->system_id) : "?") +
             ", newcomer " + (new_info ? std::to_string(new_info->system_id) : "?");
  }
  const std::string cause = LikelyConflictCause(c.name, old_info, new_info, diff.diff(), lsn);
  facts += "; likely cause: " + cause;

  // Quarantine the newcomer (once per content), within the cap.
  const std::string qname = c.name + "." + c.new_hash.Hex().substr(0, 16) +
                            std::string(StoreSuffix(c.data_format));
  auto qdir = OpenDirAt(c.cluster_fd, kQuarantineDir, c.cluster_shown + "/" + kQuarantineDir, true, *c.fs);
  if (!qdir.ok()) return facts + "; not quarantined: " + qdir.error().message();
  struct stat st{};
  if (::fstatat(qdir->get(), qname.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    return facts + "; newcomer already in quarantine/" + qname;
  }
  struct stat data{};
  if (::fstatat(c.incoming_fd, c.data_name.c_str(), &data, AT_SYMLINK_NOFOLLOW) != 0) {
    return facts + "; not quarantined: temp data gone";
  }
  auto used = DirBytes(qdir->get());
  if (!used.ok()) return facts + "; not quarantined: " + used.error().message();
  if (*used + static_cast<std::uint64_t>(data.st_size) > c.cap) {
    return facts + "; not quarantined: quarantine full (" + std::to_string(*used) + " of " +
           std::to_string(c.cap) + " bytes)";
  }
  std::string info = "name=" + c.name + "\nreceived=" + UtcNow() + "\nsize=" + std::to_string(c.new_size) +
                     "\ndetails=" + facts + "\n";
  const std::string shown = c.cluster_shown + "/" + kQuarantineDir + "/" + qname;
  Status w = WriteAtomic(*c.fs, qdir->get(), qname + kInfoSuffix, info, 0600, Replace::kYes, shown + kInfoSuffix);
  if (!w.ok()) {
    // Its directory fsync may fail after the rename: no info without its newcomer.
    (void)c.fs->Unlink(qdir->get(), (qname + kInfoSuffix).c_str());
    return facts + "; not quarantined: " + w.error().message();
  }
  Status moved = RenameDurable(*c.fs, c.data_fd, c.incoming_fd, c.data_name, qdir->get(), qname, Replace::kNo, shown);
  if (!moved.ok() && moved.error().code() != ErrorCode::kExists) {
    // Step 2 or 3 failed: where the rename itself went through, the newcomer
    // is in quarantine (not yet durable); otherwise its info is removed.
    struct stat q{};
    if (::fstatat(qdir->get(), qname.c_str(), &q, AT_SYMLINK_NOFOLLOW) != 0) {
      (void)c.fs->Unlink(qdir->get(), (qname + kInfoSuffix).c_str());
      return facts + "; not quarantined: " + moved.error().message();
    }
  }
  if (!moved.ok() && moved.error().code() == ErrorCode::kExists) {
    return facts + "; newcomer already in quarantine/" + qname;
  }
  return facts + "; newcomer kept in " + std::string(kQuarantineDir) + "/" + qname;
}

}  // namespace internal

Result<std::vector<QuarantinedEntry>> ListQuarantine(const Archive& a, std::string_view cluster) {
  WF_TRY(ValidateClusterName(cluster));
  std::vector<QuarantinedEntry> out;
  const std::string dir = a.root() + "/" + std::string(cluster) + "/" + kQuarantineDir;
  auto dfd = OpenFile(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!dfd.ok()) {
    if (dfd.error().code() == ErrorCode::kNotFound) return out;
    return dfd.error();
  }
  int dup = ::dup(dfd->get());
  DIR* d = dup >= 0 ? ::fdopendir(dup) : nullptr;
  if (!d) {
    if (dup >= 0) ::close(dup);
    return ErrnoError(errno, "opendir " + dir);
  }
  std::vector<std::string> infos;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.ends_with(kInfoSuffix) && n[0] != '.') infos.push_back(n);
  }
  ::closedir(d);
  std::sort(infos.begin(), infos.end());
  for (const std::string& n : infos) {
    auto text = ReadSmallFile(dir + "/" + n, 8192);
    if (!text.ok()) continue;
    QuarantinedEntry q;
    q.file = n.substr(0, n.size() - std::strlen(kInfoSuffix));
    std::size_t pos = 0;
    while (pos < text->size()) {
      std::size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) nl = text->size();
      std::string line = text->substr(pos, nl - pos);
      pos = nl + 1;
      auto eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string k = line.substr(0, eq), v = line.substr(eq + 1);
      if (k == "name") q.name = v;
      if (k == "received") q.received = v;
      if (k == "size") q.size = std::strtoull(v.c_str(), nullptr, 10);
      if (k == "details") q.details = v;
    }
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace walferry::archive
