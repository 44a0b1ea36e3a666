// A read-only memory mapping of a file range (RAII: unmapped on destruction).
// Used where a whole file is only read and checked once (the prefetch cache's
// hit path verifies 16 MiB without copying it through a buffer).
//
// Thread-safety: the mapping may be read from any thread; the object is
// move-only and not synchronised.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <string>

#include "core/hash.h"
#include "core/result.h"

namespace walferry {

class MappedFile {
 public:
  // Maps [0, length) of `fd` read-only (length > 0), populated up front.
  static Result<MappedFile> Map(int fd, std::size_t length, const std::string& what);
  MappedFile(MappedFile&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  std::span<const std::byte> bytes() const { return {static_cast<const std::byte*>(data_), size_}; }

 private:
  MappedFile(void* d, std::size_t n) : data_(d), size_(n) {}
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

// XXH3-128 of the whole regular file at `path`, read through a mapping (no
// copy through a buffer). kInvalidArgument when its size is not `expect_size`
// (it changed since the caller looked). Thread-safe (no shared state).
Result<Hash128> HashWholeFile(const std::string& path, std::uint64_t expect_size);

}  // namespace walferry
