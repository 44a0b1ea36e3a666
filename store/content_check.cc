// archive::WithContentCheck: the tar completeness rule (tar_check.h) in front
// of any store's Incoming, so the disk archive and the object store apply it
// alike, on the raw bytes the receiver has verified.
#include "store/store.h"
#include "store/tar_check.h"

namespace walferry::store {
namespace {

class CheckedIncoming final : public Incoming {
 public:
  CheckedIncoming(std::unique_ptr<Incoming> inner, const TransferSpec& spec)
      : inner_(std::move(inner)), name_(spec.name), check_(spec.content) {}

  Status Rebuild() {
    class Feed final : public ByteSink {
     public:
      explicit Feed(TarCheck& c) : c_(c) {}
      Status Write(std::span<const std::byte> d) override {
        c_.Update(d);
        return Status::Ok();
      }
      Status Finish() override { return Status::Ok(); }

     private:
      TarCheck& c_;
    } feed(check_);
    WF_TRY(inner_->ReadDurable(feed));
    if (check_.bytes() != inner_->next_raw_offset()) {
      return Error(ErrorCode::kUnsupported, name_ + ": temp data holds " + std::to_string(check_.bytes()) +
                                                " bytes, the transfer " + std::to_string(inner_->next_raw_offset()));
    }
    return Status::Ok();
  }

  std::uint64_t next_chunk() const override { return inner_->next_chunk(); }
  std::uint64_t next_raw_offset() const override { return inner_->next_raw_offset(); }
  Status Append(std::uint64_t index, std::span<const std::byte> raw, compress::Algorithm frame_algorithm,
                std::span<const std::byte> frame) override {
    WF_TRY(inner_->Append(index, raw, frame_algorithm, frame));
    check_.Update(raw);
    return Status::Ok();
  }
  Result<std::uint64_t> Sync() override { return inner_->Sync(); }
  Result<CommitOutcome> Commit(std::uint64_t raw_size, const Hash128& raw_hash) override {
    if (Status st = check_.Finish(); !st.ok()) {
      inner_->Abandon();
      return Error(ErrorCode::kRefused, name_ + " refused: " + st.error().message() + "; nothing stored");
    }
    return inner_->Commit(raw_size, raw_hash);
  }
  void Abandon() override { inner_->Abandon(); }
  Status ReadDurable(ByteSink& sink) override { return inner_->ReadDurable(sink); }
  std::unique_ptr<Incoming> Release() { return std::move(inner_); }

 private:
  std::unique_ptr<Incoming> inner_;
  std::string name_;
  TarCheck check_;
};

}  // namespace

Result<std::unique_ptr<Incoming>> WithContentCheck(std::unique_ptr<Incoming> inner, const TransferSpec& spec,
                                                   std::string* note) {
  auto kind = ClassifyName(spec.name);
  if (!kind.ok() || *kind != EntryKind::kFile || spec.content == ContentCheck::kNone) return inner;
  auto checked = std::make_unique<CheckedIncoming>(std::move(inner), spec);
  if (checked->next_raw_offset() > 0) {
    if (Status st = checked->Rebuild(); !st.ok()) {
      if (spec.content == ContentCheck::kTar || st.error().code() != ErrorCode::kUnsupported) {
        checked->Abandon();  // the check needs every byte: the caller starts over
        return Error(ErrorCode::kUnsupported, st.error().message());
      }
      // kAuto on a store that cannot read its temp data back: resume without
      // the receiver's check rather than lose the resume (a walferry sender
      // checks the stream itself before COMMIT).
      if (note) *note = "resumed without the receiver's tar check: " + st.error().message();
      return checked->Release();
    }
  }
  return std::unique_ptr<Incoming>(std::move(checked));
}

}  // namespace walferry::store
