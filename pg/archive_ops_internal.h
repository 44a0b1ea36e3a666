// Internals of pg/archive_ops shared by its .cc files (not a public API;
// pg/archive_ops.h is): archive_ops.cc (get, prefetch) and
// archive_inspect.cc (cleanup, verify's inspection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "archive/archive.h"
#include "core/hash.h"
#include "core/result.h"
#include "core/stream.h"
#include "walfmt/wal_header.h"

namespace walferry::pg::internal {

inline constexpr std::size_t kHeadBytes = 8192;

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

// Reads the long page header of a stored segment (stops decompressing early).
Result<walfmt::WalSegmentInfo> ReadSegmentHeader(const archive::Archive& a, const archive::StoredEntry& e);
// Reads a stored NNNNNNNN.history entry and checks it as PostgreSQL reads it.
Status CheckHistoryEntry(const archive::Archive& a, const archive::StoredEntry& e, std::uint32_t tli);

}  // namespace walferry::pg::internal
