// Helpers for the archive tests: scratch directories, file I/O, and real WAL
// segments from a throw-away PostgreSQL cluster (initdb run as a non-root user,
// as tests/e2e/lib/common.sh does).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/hash.h"

namespace walferry::archive::testing {

inline std::string MakeTempDir(const char* tag) {
  std::string tmpl = std::string("/tmp/wf-") + tag + ".XXXXXX";
  char* d = ::mkdtemp(tmpl.data());
  return d ? std::string(d) : std::string();
}

inline void RemoveTree(const std::string& dir) {
  if (dir.size() > 5 && dir.rfind("/tmp/", 0) == 0) {
    std::string cmd = "rm -rf '" + dir + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cleanup of %s failed\n", dir.c_str());
  }
}

inline std::vector<std::byte> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) out[i] = static_cast<std::byte>(s[i]);
  return out;
}

inline void WriteBytes(const std::string& path, const std::vector<std::byte>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline bool Exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

inline std::vector<std::byte> Pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v[i] = static_cast<std::byte>(x & 0xff);
  }
  return v;
}

// A transfer id as the sender makes them: 32 hex digits (here n, zero-padded).
inline std::string TransferId(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%032x", n);
  return buf;
}

inline bool IsRoot() { return ::geteuid() == 0; }

// The first WAL segment of a fresh cluster made with `initdb --wal-segsize=seg_mb`,
// cached per (seg_mb, variant) for the life of the process; different variants
// are different clusters (different system identifiers). Empty when PostgreSQL
// is not installed or initdb fails (callers GTEST_SKIP).
inline std::vector<std::byte> RealWalSegment(int seg_mb, int variant = 0) {
  static std::map<std::pair<int, int>, std::vector<std::byte>> cache;
  auto key = std::make_pair(seg_mb, variant);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const char* pgbin_env = std::getenv("PGBIN");
  std::string pgbin = pgbin_env ? pgbin_env : "/usr/lib/postgresql/15/bin";
  if (::access((pgbin + "/initdb").c_str(), X_OK) != 0) return {};
  std::string dir = MakeTempDir("walseg");
  if (dir.empty()) return {};
  ::chmod(dir.c_str(), 01777);
  std::string as_user;
  if (IsRoot()) {
    if (std::system("id -u wftest >/dev/null 2>&1 || useradd --system --create-home --shell /bin/bash wftest") != 0) {
      RemoveTree(dir);
      return {};
    }
    as_user = "runuser -u wftest -- ";
  }
  std::ostringstream cmd;
  cmd << as_user << pgbin << "/initdb -D " << dir << "/pg -U postgres --auth=trust --no-sync"
      << " --wal-segsize=" << seg_mb << " >" << dir << "/initdb.log 2>&1";
  std::vector<std::byte> seg;
  if (std::system(cmd.str().c_str()) == 0) {
    seg = ReadBytes(dir + "/pg/pg_wal/000000010000000000000001");
  }
  RemoveTree(dir);
  cache[key] = seg;
  return seg;
}

inline void PutLe64(std::vector<std::byte>& b, std::size_t at, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
inline void PutLe32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
inline void PutLe16(std::vector<std::byte>& b, std::size_t at, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) b[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}

// A synthesized long page header (40 bytes, padded to `size`).
inline std::vector<std::byte> SynthHeader(std::uint16_t magic, std::uint32_t tli,
                                          std::uint64_t pageaddr, std::uint64_t sysid,
                                          std::uint32_t seg_size, std::size_t size = 8192,
                                          std::uint16_t info = 0x0002,
                                          std::uint32_t blcksz = 8192) {
  std::vector<std::byte> b(size);
  PutLe16(b, 0, magic);
  PutLe16(b, 2, info);
  PutLe32(b, 4, tli);
  PutLe64(b, 8, pageaddr);
  PutLe64(b, 24, sysid);
  PutLe32(b, 32, seg_size);
  PutLe32(b, 36, blcksz);
  return b;
}

}  // namespace walferry::archive::testing
