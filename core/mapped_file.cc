#include "core/mapped_file.h"

#include <sys/mman.h>

#include <cerrno>

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
