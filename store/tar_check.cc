// Streaming tar completeness check; the rules are in tar_check.h and
// docs/archive-layout.md. Hand-written because no Debian library checks a tar
// stream incrementally without extracting it (libarchive reads whole archives
// through callbacks and would need the data twice); the format part is the
// 512-byte ustar header (POSIX.1-1988, GNU variant), nothing more.
#include "store/tar_check.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>

namespace walferry::store {
namespace {

constexpr std::size_t kNameOff = 0, kNameLen = 100;
constexpr std::size_t kSizeOff = 124, kSizeLen = 12;
constexpr std::size_t kSumOff = 148, kSumLen = 8;
constexpr std::size_t kTypeOff = 156;
constexpr std::size_t kMagicOff = 257;
constexpr std::size_t kPrefixOff = 345, kPrefixLen = 155;
constexpr std::uint64_t kMaxMemberSize = std::uint64_t{1} << 62;
constexpr std::uint32_t kFirstManifestControlVersion = 1300;  // PostgreSQL 13

std::uint8_t U8(const std::byte* b, std::size_t i) { return std::to_integer<std::uint8_t>(b[i]); }

std::string Field(const std::byte* b, std::size_t off, std::size_t len) {
  const char* p = reinterpret_cast<const char*>(b + off);
  return std::string(p, strnlen(p, len));
}

// Octal, space/NUL padded (or terminated); false when malformed.
bool ParseOctal(const std::byte* b, std::size_t off, std::size_t len, std::uint64_t* out) {
  std::size_t i = 0;
  while (i < len && U8(b, off + i) == ' ') ++i;
  std::uint64_t v = 0;
  std::size_t digits = 0;
  for (; i < len; ++i) {
    const std::uint8_t c = U8(b, off + i);
    if (c == ' ' || c == 0) break;
    if (c < '0' || c > '7') return false;
    if (v > (kMaxMemberSize >> 3)) return false;
    v = v * 8 + (c - '0');
    ++digits;
  }
  for (; i < len; ++i) {
    const std::uint8_t c = U8(b, off + i);
    if (c != ' ' && c != 0) return false;
  }
  if (digits == 0) return false;
  *out = v;
  return true;
}

bool ParseSize(const std::byte* b, std::uint64_t* out) {
  if (U8(b, kSizeOff) & 0x80) {  // GNU base-256, big-endian, for sizes >= 8 GiB
    if (U8(b, kSizeOff) != 0x80) return false;  // negative or beyond 2^88
    std::uint64_t v = 0;
    for (std::size_t i = 1; i < kSizeLen; ++i) {
      if (v > (kMaxMemberSize >> 8)) return false;
      v = (v << 8) | U8(b, kSizeOff + i);
    }
    *out = v;
    return true;
  }
  return ParseOctal(b, kSizeOff, kSizeLen, out);
}

bool ChecksumOk(const std::byte* b) {
  std::uint64_t want = 0;
  if (!ParseOctal(b, kSumOff, kSumLen, &want)) return false;
  std::uint64_t usum = 0;
  std::int64_t ssum = 0;
  for (std::size_t i = 0; i < TarCheck::kBlock; ++i) {
    const std::uint8_t c = (i >= kSumOff && i < kSumOff + kSumLen) ? ' ' : U8(b, i);
    usum += c;
    ssum += static_cast<std::int8_t>(c);
  }
  return want == usum || static_cast<std::int64_t>(want) == ssum;
}

bool IsUstar(const std::byte* b) {
  return std::memcmp(b + kMagicOff, "ustar", 5) == 0 && (U8(b, kMagicOff + 5) == 0 || U8(b, kMagicOff + 5) == ' ');
}

bool AllZero(std::span<const std::byte> d) {
  return std::all_of(d.begin(), d.end(), [](std::byte c) { return c == std::byte{0}; });
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Hex(const unsigned char* d, std::size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(kHex[d[i] >> 4]);
    s.push_back(kHex[d[i] & 15]);
  }
  return s;
}

}  // namespace

struct TarCheck::Sha {
  Sha() : ctx(EVP_MD_CTX_new()) { ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1; }
  ~Sha() { EVP_MD_CTX_free(ctx); }
  Sha(const Sha&) = delete;
  Sha& operator=(const Sha&) = delete;
  void Update(const std::string& s) {
    if (ok && !s.empty()) ok = EVP_DigestUpdate(ctx, s.data(), s.size()) == 1;
  }
  // Lowercase hex digest, "" on failure.
  std::string Final() {
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!ok || EVP_DigestFinal_ex(ctx, d, &n) != 1) return "";
    return Hex(d, n);
  }
  EVP_MD_CTX* ctx;
  bool ok = false;
};

TarCheck::TarCheck(ContentCheck mode) : mode_(mode) {}
TarCheck::~TarCheck() = default;

void TarCheck::Bad(std::string why) {
  if (state_ == State::kBad) return;
  state_ = State::kBad;
  error_ = std::move(why);
}

void TarCheck::Update(std::span<const std::byte> data) {
  if (mode_ == ContentCheck::kNone) {
    offset_ += data.size();
    return;
  }
  while (!data.empty()) {
    if (state_ == State::kNotTar || state_ == State::kBad) {
      offset_ += data.size();
      return;
    }
    if (state_ == State::kEnd) {
      // The offset of the first non-zero byte, not of the piece holding it:
      // the message must not depend on how the stream was split.
      auto nz = std::find_if(data.begin(), data.end(), [](std::byte c) { return c != std::byte{0}; });
      if (nz != data.end()) {
        Bad("data after the end-of-archive marker at byte " +
            std::to_string(offset_ + static_cast<std::uint64_t>(nz - data.begin())));
      }
      offset_ += data.size();
      return;
    }
    if (state_ == State::kData && block_len_ == 0) {
      // Member data and its padding pass through without copying.
      const std::uint64_t left = data_left_ + pad_left_;
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, data.size()));
      const std::size_t in_data = static_cast<std::size_t>(std::min<std::uint64_t>(data_left_, n));
      if (in_data) Data(data.first(in_data));
      pad_left_ -= n - in_data;
      offset_ += n;
      data = data.subspan(n);
      if (data_left_ == 0 && pad_left_ == 0) state_ = State::kHeader;
      continue;
    }
    const std::size_t take = std::min(kBlock - block_len_, data.size());
    std::memcpy(block_ + block_len_, data.data(), take);
    block_len_ += take;
    offset_ += take;
    data = data.subspan(take);
    if (block_len_ == kBlock) {
      block_len_ = 0;
      Block(block_);
    }
  }
}

void TarCheck::Block(const std::byte* b) {
  const std::span<const std::byte> blk(b, kBlock);
  if (!decided_) {
    decided_ = true;
    if (!IsUstar(b) || !ChecksumOk(b)) {
      if (mode_ == ContentCheck::kTar) {
        Bad("not a tar archive (no valid ustar header at byte 0)");
      } else {
        state_ = State::kNotTar;
      }
      return;
    }
    is_tar_ = true;
  }
  if (AllZero(blk)) {
    if (++zero_blocks_ == 2) state_ = State::kEnd;
    return;
  }
  if (zero_blocks_ > 0) {
    Bad("a header after a zero block at byte " + std::to_string(offset_ - kBlock));
    return;
  }
  Header(b);
}

void TarCheck::Header(const std::byte* b) {
  const std::uint64_t at = offset_ - kBlock;
  if (!ChecksumOk(b)) {
    Bad("tar header at byte " + std::to_string(at) + " has a bad checksum" +
        (member_.empty() ? "" : " (after member " + member_ + ")"));
    return;
  }
  std::uint64_t size = 0;
  if (!ParseSize(b, &size)) {
    Bad("tar header at byte " + std::to_string(at) + " has a bad size field");
    return;
  }
  std::string name = Field(b, kNameOff, kNameLen);
  if (IsUstar(b)) {
    std::string prefix = Field(b, kPrefixOff, kPrefixLen);
    if (!prefix.empty()) name = prefix + "/" + name;
  }
  if (name.rfind("./", 0) == 0) name.erase(0, 2);
  const std::uint8_t type = U8(b, kTypeOff);
  const bool regular = type == '0' || type == 0 || type == '7';
  member_ = name;
  ++members_;
  member_kind_ = Member::kOther;
  if (regular && name == "backup_label") saw_label_ = true;
  if (regular && name == "backup_manifest") {
    member_kind_ = Member::kManifest;
    saw_manifest_ = true;
    sha_ = std::make_unique<Sha>();
    last_line_.clear();
    line_.clear();
    manifest_newlines_ = 0;
    manifest_error_.clear();
  }
  if (regular && name == "global/pg_control") {
    member_kind_ = Member::kControl;
    control_head_.clear();
    control_version_ = 0;
  }
  data_left_ = size;
  pad_left_ = (kBlock - size % kBlock) % kBlock;
  if (size == 0) {
    Data({});  // an empty manifest is finished (and wrong) at once
    return;
  }
  state_ = State::kData;
}

void TarCheck::Data(std::span<const std::byte> d) {
  data_left_ -= d.size();
  if (member_kind_ == Member::kControl && control_head_.size() < 12) {
    const std::size_t n = std::min<std::size_t>(12 - control_head_.size(), d.size());
    control_head_.append(reinterpret_cast<const char*>(d.data()), n);
    if (control_head_.size() == 12) {
      // ControlFileData starts with system_identifier (u64), then
      // pg_control_version (u32), in the server's byte order (little-endian here).
      std::uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(control_head_[8 + i]);
      control_version_ = v;
    }
  }
  if (member_kind_ == Member::kManifest) {
    ManifestBytes(d);
    if (data_left_ == 0) {
      // pg_verifybackup's rule (parse_manifest.c, verify_manifest_checksum).
      const std::string digest = sha_ ? sha_->Final() : "";
      if (manifest_error_.empty()) {
        if (!line_.empty()) {
          manifest_error_ = "last line not newline-terminated";
        } else if (manifest_newlines_ < 2) {
          manifest_error_ = "expected at least 2 lines";
        } else {
          static constexpr std::string_view kKey = "\"Manifest-Checksum\"";
          std::size_t p = last_line_.find(kKey);
          std::string hex;
          if (p != std::string::npos) {
            p += kKey.size();
            while (p < last_line_.size() && (last_line_[p] == ' ' || last_line_[p] == ':')) ++p;
            if (p < last_line_.size() && last_line_[p] == '"') {
              std::size_t e = last_line_.find('"', p + 1);
              if (e != std::string::npos) hex = last_line_.substr(p + 1, e - p - 1);
            }
          }
          bool hex_ok = hex.size() == 64 &&
                        std::all_of(hex.begin(), hex.end(), [](char c) { return HexValue(c) >= 0; });
          if (!hex_ok) {
            manifest_error_ = "manifest has no valid Manifest-Checksum line";
          } else {
            std::transform(hex.begin(), hex.end(), hex.begin(), [](char c) {
              return static_cast<char>(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
            });
            if (digest.empty()) {
              manifest_error_ = "cannot compute SHA-256";
            } else if (digest != hex) {
              manifest_error_ = "manifest checksum mismatch (SHA-256 " + digest + ", recorded " + hex + ")";
            }
          }
        }
      }
      sha_.reset();
      last_line_.clear();
      member_kind_ = Member::kOther;
    }
  }
}

void TarCheck::ManifestBytes(std::span<const std::byte> d) {
  if (!manifest_error_.empty()) return;
  const char* p = reinterpret_cast<const char*>(d.data());
  std::size_t n = d.size();
  while (n > 0) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', n));
    const std::size_t part = nl ? static_cast<std::size_t>(nl - p) : n;
    if (line_.size() + part > kMaxManifestLine) {
      manifest_error_ = "manifest line longer than " + std::to_string(kMaxManifestLine) + " bytes";
      return;
    }
    line_.append(p, part);
    if (!nl) return;
    // A line is complete: the one before it is not the last, so hash it.
    sha_->Update(last_line_);
    last_line_ = std::move(line_);
    last_line_.push_back('\n');
    line_.clear();
    ++manifest_newlines_;
    p += part + 1;
    n -= part + 1;
  }
}

Status TarCheck::Finish() {
  auto refuse = [](const std::string& why) { return Error(ErrorCode::kRefused, why); };
  if (mode_ == ContentCheck::kNone || state_ == State::kNotTar) return Status::Ok();
  if (state_ == State::kBad) return refuse(error_);
  if (!decided_) {
    if (mode_ == ContentCheck::kAuto) return Status::Ok();
    return refuse("not a tar archive (" + std::to_string(offset_) + " bytes, shorter than one tar header)");
  }
  if (state_ != State::kEnd) {
    std::string where = state_ == State::kData ? "inside member " + member_ : "after " + std::to_string(members_) + " members";
    return refuse("incomplete tar archive: it ends at byte " + std::to_string(offset_) + " " + where +
                  ", without the end-of-archive marker (the producer stopped early?)");
  }
  if (saw_manifest_ && !manifest_error_.empty()) return refuse("backup_manifest in the tar: " + manifest_error_);
  if (saw_label_ && control_version_ >= kFirstManifestControlVersion && !saw_manifest_) {
    return refuse("base backup (pg_control version " + std::to_string(control_version_) +
                  ") without its backup_manifest member; pg_basebackup did not finish (send with --expect any"
                  " to store a backup made with --no-manifest)");
  }
  return Status::Ok();
}

}  // namespace walferry::store
