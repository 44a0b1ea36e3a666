// Transfer ids: a file's is derived from what identifies its content (so a
// rerun resumes), a pipe's is random.
#include <sys/random.h>
#include <sys/stat.h>

#include <cstring>

#include "transport/sender.h"

namespace walferry::transport {

Result<std::array<std::uint8_t, 16>> FileTransferId(const std::string& path, const std::string& name,
                                                    std::size_t chunk_size) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, path);
  std::string key = "walferry-file-v1";
  key.push_back('\0');
  key += name;
  key.push_back('\0');
  for (std::uint64_t v : {std::uint64_t(st.st_size), std::uint64_t(st.st_mtim.tv_sec),
                          std::uint64_t(st.st_mtim.tv_nsec), std::uint64_t(st.st_ino),
                          std::uint64_t(st.st_dev), std::uint64_t(chunk_size)}) {
    key.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  Hash128 h = Xxh3_128({reinterpret_cast<const std::byte*>(key.data()), key.size()});
  std::array<std::uint8_t, 16> id{};
  std::memcpy(id.data(), &h.high, 8);
  std::memcpy(id.data() + 8, &h.low, 8);
  return id;
}

std::array<std::uint8_t, 16> RandomTransferId() {
  std::array<std::uint8_t, 16> id{};
  std::size_t got = 0;
  while (got < id.size()) {
    ssize_t n = ::getrandom(id.data() + got, id.size() - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  return id;
}

}  // namespace walferry::transport
