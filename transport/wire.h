// The walferry wire protocol: constants, frame structs, and a strict, bounded,
// pure parser/encoder. Prose description: docs/wire-format.md.
//
// Every frame is an 8-byte header followed by a body:
//   magic 'W' 'F' | type u8 | flags u8 (0) | body_len u32 little-endian
// body_len is checked against the per-type bound (kMaxBody) before anything is
// allocated or read. All integers are little-endian.
//
// Thread-safety: every function here is pure (no state); FrameReader and
// FrameWriter belong to one connection and one thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "compress/codec.h"
#include "core/hash.h"
#include "core/result.h"

namespace walferry::transport {

class Conn;

inline constexpr std::uint16_t kProtocolVersion = 1;
inline constexpr std::byte kMagic0{'W'};
inline constexpr std::byte kMagic1{'F'};
inline constexpr std::size_t kHeaderSize = 8;

// Hard limits, enforced before allocation.
inline constexpr std::uint32_t kMaxChunkRaw = 16u << 20;      // raw bytes of one chunk
// Payload bytes of one chunk: the largest compressed form of the largest raw
// chunk any codec may produce. A sender also sends a chunk raw (wire_len ==
// raw_len) when compressing does not shrink it.
inline constexpr std::uint32_t kMaxChunkWire =
    static_cast<std::uint32_t>(compress::MaxCompressedSize(kMaxChunkRaw));
inline constexpr std::size_t kMaxNameLen = 255;               // archive names
inline constexpr std::size_t kMaxClusterLen = 64;             // cluster names
inline constexpr std::size_t kMaxMessageLen = 1024;           // ERROR messages
inline constexpr std::size_t kChunkFixedSize = 40;            // CHUNK fields before the payload
inline constexpr std::uint32_t kMaxControlBody = 2048;        // any non-CHUNK frame body
inline constexpr std::uint32_t kMaxFrameBody = kChunkFixedSize + kMaxChunkWire;
inline constexpr std::uint64_t kUnknownSize = ~std::uint64_t{0};

enum class FrameType : std::uint8_t {
  kHello = 1,      // both directions, first frame
  kOpen = 2,       // sender -> receiver: start or resume a transfer
  kOpened = 3,     // receiver -> sender
  kChunk = 4,      // sender -> receiver
  kAck = 5,        // receiver -> sender
  kCommit = 6,     // sender -> receiver
  kCommitted = 7,  // receiver -> sender
  kError = 8,      // either direction; the connection closes after it
  kFetch = 9,      // reader -> receiver: send me a stored file (answered with
                   // OPEN, CHUNKs, COMMIT in the other direction, or ERROR)
  kHave = 10,      // sender -> receiver: do you hold NAME with this size and XXH3-128?
  kHaveReply = 11, // receiver -> sender: absent / identical / different
};
std::string_view FrameTypeName(FrameType t);

// Feature bits in HELLO (unknown bits are ignored).
inline constexpr std::uint32_t kFeatureNone = 0;
// The receiver answers HAVE (sent in its HELLO; a sender sends HAVE only then).
inline constexpr std::uint32_t kFeatureHave = 1u << 0;
// The receiver answers a name-only HAVE (raw_size kUnknownSize, hash zero) with
// kAbsent or kPresent, without reading its copy (sent in its HELLO).
inline constexpr std::uint32_t kFeatureHaveProbe = 1u << 1;

// Codec of a chunk payload; same values as compress::Algorithm.
enum class WireCodec : std::uint8_t { kRaw = 0, kZstd = 1, kGzip = 2 };
// Store format announced in OPENED; same values as archive::StoreFormat.
enum class WireStore : std::uint8_t { kRaw = 0, kZstd = 1, kGzip = 2 };
// Kind the sender expects (the receiver classifies the name itself and refuses a mismatch).
// kTar: a file that must be a complete tar archive (`send --expect tar`);
// kAny: a file stored without the tar completeness check (`--expect any`).
// Receivers before these values refuse them (OPEN kind), which fails safe.
enum class WireKind : std::uint8_t { kAuto = 0, kWal = 1, kFile = 2, kTar = 3, kAny = 4 };
enum class WireOutcome : std::uint8_t { kPlaced = 1, kIdentical = 2 };

struct HelloFrame {
  std::uint16_t version = kProtocolVersion;
  std::uint32_t features = kFeatureNone;
  std::string cluster;  // claimed cluster; honoured only on insecure connections; <= 64 bytes
  bool operator==(const HelloFrame&) const = default;
};

struct OpenFrame {
  std::array<std::uint8_t, 16> transfer_id{};
  std::uint64_t raw_size = kUnknownSize;  // kUnknownSize for pipes
  std::uint32_t chunk_size = 1u << 20;    // raw size of every chunk but the last; 1..kMaxChunkRaw
  WireKind kind = WireKind::kAuto;
  WireCodec codec = WireCodec::kZstd;     // codec the sender would like to use
  std::string name;                       // 1..255 bytes (validated by the archive)
  bool operator==(const OpenFrame&) const = default;
};

struct OpenedFrame {
  std::uint64_t resume_from_chunk = 0;  // chunks already durable
  std::uint64_t resume_raw_offset = 0;  // raw offset of chunk resume_from_chunk
  WireStore store = WireStore::kZstd;   // how the receiver stores files
  WireCodec codec = WireCodec::kZstd;   // codec the sender must use for CHUNKs
  std::uint32_t ack_every = 8;          // receiver ACKs after every ack_every chunks (>= 1)
  bool operator==(const OpenedFrame&) const = default;
};

struct ChunkFrame {
  std::uint64_t index = 0;
  std::uint64_t raw_offset = 0;
  std::uint32_t raw_len = 0;   // 1..kMaxChunkRaw
  std::uint32_t wire_len = 0;  // payload.size(), 1..MaxCompressedSize(raw_len); == raw_len when raw
  WireCodec codec = WireCodec::kZstd;
  std::uint64_t raw_xxh3 = 0;  // XXH3-64 of the raw bytes
  std::span<const std::byte> payload;  // points into the buffer that was parsed
};

struct AckFrame {
  std::uint64_t durable_chunks = 0;
  bool operator==(const AckFrame&) const = default;
};

struct CommitFrame {
  std::uint64_t raw_size = 0;
  Hash128 raw_hash;  // XXH3-128 of the whole raw stream
  bool operator==(const CommitFrame&) const = default;
};

struct CommittedFrame {
  WireOutcome outcome = WireOutcome::kPlaced;
  bool operator==(const CommittedFrame&) const = default;
};

struct ErrorFrame {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // <= kMaxMessageLen bytes (longer messages are cut when encoding)
  bool operator==(const ErrorFrame&) const = default;
};

// Restore side (walferry get --from HOST:PORT): asks for a stored entry of the
// authenticated cluster. The receiver answers OPEN{name, raw_size unknown,
// chunk_size, codec}, CHUNKs (index/offset/XXH3-64 as a sender's) and
// COMMIT{raw size, XXH3-128}; or ERROR (kNotFound when the archive lacks it).
struct FetchFrame {
  std::uint64_t offset = 0;  // raw offset to start at; only 0 is served today
  std::string name;          // 1..255 bytes
  bool operator==(const FetchFrame&) const = default;
};

// Archive side, before an OPEN (walferry push): "is NAME already stored with
// exactly this content?" The receiver compares size and XXH3-128 of the raw
// content of its stored copy (a stored copy is complete and fsynced by
// construction) and answers HAVE_REPLY; kIdentical lets the sender exit 0
// without shipping the file (archive_mode = always re-archives what the
// primary already archived). Any other answer: the sender goes on with OPEN.
// A probe (kFeatureHaveProbe: raw_size kUnknownSize, hash zero) asks for the
// name alone: kAbsent, or kPresent and then the sender hashes its file and
// asks the whole question; a file that is not stored costs the sender no read.
struct HaveFrame {
  std::uint64_t raw_size = 0;
  Hash128 raw_hash;  // XXH3-128 of the whole raw content
  std::string name;  // 1..255 bytes
  bool operator==(const HaveFrame&) const = default;
};
enum class WireHave : std::uint8_t { kAbsent = 0, kIdentical = 1, kDifferent = 2, kPresent = 3 /* to a probe */ };
struct HaveReplyFrame {
  WireHave answer = WireHave::kAbsent;
  bool operator==(const HaveReplyFrame&) const = default;
};

using Frame = std::variant<HelloFrame, OpenFrame, OpenedFrame, ChunkFrame, AckFrame,
                           CommitFrame, CommittedFrame, ErrorFrame, FetchFrame, HaveFrame,
                           HaveReplyFrame>;
FrameType TypeOf(const Frame& f);

struct FrameHeader {
  FrameType type;
  std::uint32_t body_len;
};

// Parses and bounds-checks a header: magic, known type, flags 0, and body_len
// within the type's limits (exact size for fixed frames). kProtocol otherwise.
Result<FrameHeader> ParseHeader(std::span<const std::byte, kHeaderSize> bytes);

// Parses a body of `header.body_len` bytes. kProtocol on any inconsistency
// (short/long body, bad enum, lengths that disagree, out-of-range values).
// A ChunkFrame's payload points into `body`.
Result<Frame> ParseBody(const FrameHeader& header, std::span<const std::byte> body);

// Pure whole-frame parser over a byte buffer (what the fuzzer drives).
struct ParsedFrame {
  Frame frame;
  std::size_t consumed = 0;  // header + body
};
// Returns nullopt-like result via `need_more`: when `bytes` holds an incomplete
// frame, returns kOk with consumed == 0 and *need_more set to the total bytes
// the frame needs. Errors are kProtocol.
Result<ParsedFrame> ParseFrame(std::span<const std::byte> bytes, std::size_t* need_more);

// Appends the encoding of `f` (header + body, including a CHUNK payload) to `out`.
// Strings longer than their limit are a programming error for names/clusters
// (kInvalidArgument); ERROR messages are cut to kMaxMessageLen.
Status EncodeFrame(const Frame& f, std::vector<std::byte>& out);

// Encodes a CHUNK header (frame header + fixed fields, without payload) into `out`
// (replacing its contents); the payload is written after it separately to avoid a copy.
// kInternal when the chunk breaks a limit the parser enforces (raw_len outside
// 1..kMaxChunkRaw, payload outside 1..MaxCompressedSize(raw_len), a raw payload
// whose size is not raw_len, a bad codec): the encoder never emits what
// ParseBody would refuse.
Status EncodeChunkHead(const ChunkFrame& c, std::vector<std::byte>& out);

// Decides, from a frame's checked header, whether its body may be allocated
// (a receiver's shared memory budget, transport/buffer_budget.h). Called after
// the header is read and before the buffer grows for the body; an error ends
// the Read with it. The reader's buffer may be freed inside Admit.
class FrameAdmission {
 public:
  virtual ~FrameAdmission() = default;
  virtual Status Admit(const FrameHeader& header) = 0;
};

// Reads frames from a connection into one reused buffer (grown at most to
// kHeaderSize + kMaxFrameBody). The returned Frame (a CHUNK's payload) stays
// valid until the next Read.
class FrameReader {
 public:
  explicit FrameReader(Conn& conn) : conn_(conn), buf_(own_) {}
  // Uses `buffer` (kept alive by the caller) so that a server can recycle it
  // across connections instead of touching fresh memory for each one.
  FrameReader(Conn& conn, std::vector<std::byte>& buffer, FrameAdmission* admission = nullptr)
      : conn_(conn), buf_(buffer), admission_(admission) {}
  // kNetwork on EOF/reset ("connection closed"), kProtocol on a bad frame,
  // or what the admission refused.
  Result<Frame> Read();

 private:
  Conn& conn_;
  std::vector<std::byte> own_;
  std::vector<std::byte>& buf_;
  FrameAdmission* admission_ = nullptr;
};

// Writes frames to a connection through one reused buffer.
class FrameWriter {
 public:
  explicit FrameWriter(Conn& conn) : conn_(conn) {}
  Status Write(const Frame& f);
  // CHUNK without copying the payload into the frame buffer.
  Status WriteChunk(const ChunkFrame& c);

 private:
  Conn& conn_;
  std::vector<std::byte> buf_;
};


// Converts between ErrorCode and its wire byte (unknown bytes -> kInternal).
std::uint8_t ErrorCodeToWire(ErrorCode c);
ErrorCode ErrorCodeFromWire(std::uint8_t b);

// 32 lowercase hex digits of a transfer id (archive::TransferSpec::transfer_id).
std::string TransferIdHex(const std::array<std::uint8_t, 16>& id);

}  // namespace walferry::transport
