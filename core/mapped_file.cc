#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>

#include "core/fd.h"

namespace walferry {

Result<MappedFile> MappedFile::Map(int fd, std::size_t length, const std::string& what) {
  if (length == 0) return Error(ErrorCode::kInvalidArgument, what + ": nothing to map");
  void* p = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return ErrnoError(errno, "mmap " + what);
  ::madvise(p, length, MADV_SEQUENTIAL);
  return MappedFile(p, length);
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, size_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(data_, size_);
}

}  // namespace walferry

namespace walferry {

Result<Hash128> HashWholeFile(const std::string& path, std::uint64_t expect_size) {
  WF_ASSIGN(UniqueFd fd, OpenFile(path, O_RDONLY | O_CLOEXEC));
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return ErrnoError(errno, path);
  if (static_cast<std::uint64_t>(st.st_size) != expect_size) {
    return Error(ErrorCode::kInvalidArgument, path + ": size changed while reading");
  }
  if (expect_size == 0) return Xxh3_128({});
  WF_ASSIGN(MappedFile map, MappedFile::Map(fd.get(), static_cast<std::size_t>(expect_size), path));
  return Xxh3_128(map.bytes());
}

}  // namespace walferry
