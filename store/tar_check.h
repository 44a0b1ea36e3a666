// Completeness check of a tar stream, so that a cut or failed
// `pg_basebackup -Ft -D - | walferry send - --name base.tar` is never stored
// under its final name (docs/archive-layout.md, "Tar archives").
//
// Fed the raw bytes of a stream in order, with bounded memory (one 512-byte
// block, one manifest line of at most kMaxManifestLine bytes, a SHA-256
// state). Finish() then says whether the stream is acceptable:
//  - kAuto: a stream whose first 512 bytes are not a ustar header (magic
//    "ustar" at 257 and a valid header checksum) is not a tar: accepted as is.
//  - kTar: the stream must be a tar archive.
//  - a tar must end with its end-of-archive marker (two zero blocks; only
//    zero bytes may follow, the record padding tar writes); every header's
//    checksum must be valid and every member's data present.
//  - a base backup (a member named backup_label) made by PostgreSQL 13 or
//    later (global/pg_control's pg_control_version >= 1300) must carry its
//    backup_manifest member, as pg_basebackup writes it into a tar on stdout;
//    a backup_manifest member, whenever present, must pass pg_verifybackup's
//    own rule: newline-terminated, at least two lines, and the last line's
//    "Manifest-Checksum" equal to the SHA-256 of everything before that line.
//  - kNone: nothing is checked.
//
// Thread-safety: one TarCheck per stream, used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/result.h"

namespace walferry::store {

enum class ContentCheck : unsigned char {
  kAuto = 0,  // check tar streams, detected from their first header
  kTar = 1,   // the stream must be a complete tar archive
  kNone = 2,  // store whatever arrives
};

class TarCheck {
 public:
  static constexpr std::size_t kBlock = 512;
  static constexpr std::size_t kMaxManifestLine = 64 * 1024;

  explicit TarCheck(ContentCheck mode);
  ~TarCheck();
  TarCheck(const TarCheck&) = delete;
  TarCheck& operator=(const TarCheck&) = delete;

  // Feeds the next bytes of the stream. Never fails: a violation is kept and
  // reported by Finish() (later bytes are then ignored).
  void Update(std::span<const std::byte> data);
  // After the whole stream: Ok, or kRefused with a one-line reason.
  Status Finish();

  bool is_tar() const { return is_tar_; }
  std::uint64_t bytes() const { return offset_; }

 private:
  void Block(const std::byte* b);
  void Header(const std::byte* b);
  void Data(std::span<const std::byte> d);
  void ManifestBytes(std::span<const std::byte> d);
  void Bad(std::string why);

  enum class State { kHeader, kData, kEnd, kNotTar, kBad };
  ContentCheck mode_;
  State state_ = State::kHeader;
  std::string error_;
  std::uint64_t offset_ = 0;      // stream bytes seen
  std::byte block_[kBlock];       // partial block
  std::size_t block_len_ = 0;
  bool is_tar_ = false;
  bool decided_ = false;          // first header seen (or the stream is not a tar)
  int zero_blocks_ = 0;
  std::uint64_t data_left_ = 0;   // member data bytes still to come
  std::uint64_t pad_left_ = 0;    // padding after the member data
  std::string member_;            // name of the current member
  enum class Member { kOther, kManifest, kControl } member_kind_ = Member::kOther;
  std::uint64_t members_ = 0;
  bool saw_label_ = false;
  bool saw_manifest_ = false;
  std::uint32_t control_version_ = 0;
  std::string control_head_;      // first 12 bytes of global/pg_control
  // Manifest: SHA-256 over all lines but the last complete one.
  struct Sha;
  std::unique_ptr<Sha> sha_;
  std::string last_line_, line_;
  std::uint64_t manifest_newlines_ = 0;
  std::string manifest_error_;
};

}  // namespace walferry::store
