// archive_cleanup_command and the archive's inspection (`walferry cleanup`,
// `walferry verify`).
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
#include "core/stream.h"
#include "walfmt/wal_header.h"
#include "walfmt/wal_names.h"

#include "pg/archive_ops_internal.h"

namespace walferry::pg {

using walfmt::FindGaps;
using walfmt::Gap;
using walfmt::IsWalSegmentName;
using walfmt::NewestSegment;
using walfmt::SegmentsPerLogId;
using walfmt::SelectForCleanup;

namespace internal {

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

}  // namespace internal

using internal::CheckHistoryEntry;
using internal::CheckingSink;
using internal::ReadSegmentHeader;

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

namespace {

// --full: reads `e` whole (every checksum), checks a history file's content
// and a segment's header; what is wrong goes to rep.problems.
void VerifyEntry(const archive::Archive& a, const archive::StoredEntry& e, ClusterReport& rep) {
  CheckingSink check(nullptr, false, 0, IsWalSegmentName(e.name) ? e.name : std::string());
  Status st = a.Read(e, check);
  if (!st.ok()) {
    rep.problems.push_back(e.name + ": " + st.error().message());
    return;
  }
  if (std::uint32_t tli = archive::HistoryNameTimeline(e.name); tli != 0) {
    Status hs = CheckHistoryEntry(a, e, tli);
    if (!hs.ok()) rep.problems.push_back(e.name + ": " + hs.error().message());
    return;
  }
  if (!IsWalSegmentName(e.name)) return;
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

}  // namespace

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
          VerifyEntry(a, e, rep);
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
