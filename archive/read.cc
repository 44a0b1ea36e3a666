// Read side of stored entries: streaming raw content out, hashing it.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "archive/archive.h"
#include "archive/archive_internal.h"
#include "core/fd.h"

namespace walferry::archive {

namespace {
constexpr std::size_t kRawReadBuffer = 256 << 10;
}  // namespace

Status ReadStored(int fd, const std::string& name, StoreFormat format, ByteSink& sink, std::size_t threads) {
  if (format == StoreFormat::kRaw) {
    std::vector<std::byte> buf(kRawReadBuffer);
    off_t offset = 0;
    for (;;) {
      WF_ASSIGN(std::size_t n, PreadFull(fd, buf, offset, name));
      if (n == 0) break;
      WF_TRY(sink.Write(std::span<const std::byte>(buf.data(), n)));
      offset += static_cast<off_t>(n);
      if (n < buf.size()) break;
    }
    return sink.Finish();
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) return ErrnoError(errno, "stat " + name);
  if (st.st_size == 0) return sink.Finish();  // an empty stream stored as an empty file
  return internal::Decompress(fd, name, sink, threads);  // finishes the sink itself
}

std::uint64_t StoredReadMemory(int fd, StoreFormat format, std::size_t threads, std::uint64_t fallback) {
  if (format == StoreFormat::kRaw) return kRawReadBuffer;
  struct stat st{};
  if (::fstat(fd, &st) != 0) return fallback;
  std::vector<std::byte> head(4096);
  auto n = PreadFull(fd, head, 0, "");
  if (!n.ok()) return fallback;
  head.resize(*n);
  return compress::DecodeMemory(head, static_cast<std::uint64_t>(st.st_size), threads);
}

namespace internal {
namespace {

class HashingSink final : public ByteSink {
 public:
  Status Write(std::span<const std::byte> data) override {
    hash_.Update(data);
    size_ += data.size();
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  std::uint64_t size() const { return size_; }
  Hash128 Digest() const { return hash_.Digest(); }

 private:
  Xxh3Stream hash_;
  std::uint64_t size_ = 0;
};

}  // namespace

Status ReadDataPrefix(int fd, const std::string& name, StoreFormat format, ByteSink& sink) {
  // ReadStored reads a compressed file through the fd's offset: start at 0.
  if (::lseek(fd, 0, SEEK_SET) < 0) return ErrnoError(errno, "seek " + name);
  return ReadStored(fd, name, format, sink);
}

Result<std::pair<std::uint64_t, Hash128>> HashStored(int fd, const std::string& name,
                                                     StoreFormat format) {
  HashingSink sink;
  WF_TRY(ReadStored(fd, name, format, sink));
  return std::make_pair(sink.size(), sink.Digest());
}

}  // namespace internal

Status ReadEntry(const StoredEntry& entry, ByteSink& sink) {
  WF_ASSIGN(UniqueFd fd, OpenFile(entry.path, O_RDONLY | O_NOFOLLOW));
  return ReadStored(fd.get(), entry.path, entry.format, sink);
}

Result<std::pair<std::uint64_t, Hash128>> HashEntry(const StoredEntry& entry) {
  WF_ASSIGN(UniqueFd fd, OpenFile(entry.path, O_RDONLY | O_NOFOLLOW));
  return internal::HashStored(fd.get(), entry.path, entry.format);
}

}  // namespace walferry::archive

namespace walferry::archive {

Status Archive::Read(const StoredEntry& entry, ByteSink& sink) const { return ReadEntry(entry, sink); }

Status Archive::Remove(const StoredEntry& entry) const {
  if (::unlink(entry.path.c_str()) != 0 && errno != ENOENT) return ErrnoError(errno, "remove " + entry.path);
  return Status::Ok();
}

}  // namespace walferry::archive
