// Sender::SendFile: a regular file, asked about first (HAVE) when wanted, and
// re-read from the receiver's resume point on every attempt.
#include <sys/stat.h>

#include "transport/sender_internal.h"

namespace walferry::transport {

using internal::HashingSource;

Result<WireOutcome> Sender::SendFileOnce(Xfer& x, const std::string& path, int* attempt, bool* first) {
  WF_ASSIGN(OpenedFrame o, OpenWithRetry(x, attempt));
  if (*first) x.result.resumed_from = o.resume_from_chunk;
  *first = false;
  WF_ASSIGN(auto src, OpenSource(path));
  store::TarCheck tar(internal::SenderCheck(opts_.kind));
  HashingSource hs(*src, &tar);
  auto popts = Pipeline(o.codec);
  popts.skip_chunks = o.resume_from_chunk;
  x.next_index = o.resume_from_chunk;
  Status st = compress::CompressChunks(hs, popts, [&](const compress::Chunk& c) -> Status {
    if (c.index != x.next_index || c.raw_offset != c.index * opts_.chunk_size) {
      return Error(ErrorCode::kInternal, "pipeline emitted chunk " + std::to_string(c.index) +
                                             ", expected " + std::to_string(x.next_index));
    }
    WF_TRY(SendChunk(x, internal::WireChunk(c, popts.algorithm)));
    ++x.next_index;
    if (opts_.progress) opts_.progress(c.raw_offset + c.raw_len);
    return Status::Ok();
  });
  WF_TRY(st);
  if (hs.total() != x.open.raw_size) {
    return Error(ErrorCode::kIo, path + " changed size while being sent (" + std::to_string(x.open.raw_size) +
                                     " -> " + std::to_string(hs.total()) + " bytes)");
  }
  WF_TRY(internal::CheckBeforeCommit(tar, x.open.name));
  x.result.hash = hs.Digest();
  return Commit(x, hs.total(), x.result.hash);
}

Result<SendResult> Sender::SendFile(const std::string& path, const std::string& name) {
  remote_protocol_errors_ = 0;
  Xfer x;
  x.open.name = name;
  x.open.kind = opts_.kind;
  x.open.chunk_size = static_cast<std::uint32_t>(opts_.chunk_size);
  WF_ASSIGN(x.open.transfer_id, FileTransferId(path, name, opts_.chunk_size));
  {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, path);
    if (!S_ISREG(st.st_mode)) return Error(ErrorCode::kInvalidArgument, path + ": not a regular file");
    x.open.raw_size = static_cast<std::uint64_t>(st.st_size);
  }
  if (opts_.ask_have) {
    auto have = AskHave(path, name, x.open.raw_size);
    if (have.ok() && *have) {
      x.result.outcome = WireOutcome::kIdentical;
      x.result.raw_bytes = x.open.raw_size;
      return x.result;
    }
    if (!have.ok()) Drop();  // the ordinary transfer below reconnects and reports
  }
  int attempt = 0;
  bool first = true;
  for (;;) {
    // Each attempt: OPEN (learn the resume point), re-read the file skipping
    // what is durable, COMMIT.
    auto outcome = SendFileOnce(x, path, &attempt, &first);
    if (outcome.ok()) {
      x.result.outcome = *outcome;
      x.result.raw_bytes = x.open.raw_size;
      return x.result;
    }
    const Error& e = outcome.error();
    if (x.durable > x.durable_at_failure) attempt = 0;
    x.durable_at_failure = x.durable;
    bool retry = Retryable(e) && attempt < opts_.max_retries;
    Drop();
    if (!retry) return e;
    ++attempt;
    ++x.result.reconnects;
    if (opts_.note) opts_.note("retrying after: " + e.message());
    Backoff(attempt);
  }
}

}  // namespace walferry::transport
