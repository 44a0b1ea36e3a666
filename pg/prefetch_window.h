// When `walferry get` needs to start a background prefetch worker.
//
// Every restore_command call used to start one (a process start, a scan of the
// cache directory and a lock attempt, on the same cores as replay) even when
// the read-ahead window was full or a worker was already filling it. A worker
// is started only when one of the next ceil(count / 2) segments after `name`
// is missing from the cache directory and no worker holds its lock: a worker
// fills `count` ahead, so under a steady restore one starts about every
// count / 2 calls. The segment PostgreSQL waits for is never affected: a
// miss is always fetched in the foreground.
//
// Thread-safety: a function of the directory's state; safe from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace walferry::pg {

// `name`: the segment just restored; `segment_size`: from its header (0 = 16
// MiB); `count`: the worker's window. true on any doubt (unreadable lock,
// bad name): starting a worker is always safe, only slower.
bool PrefetchWorkerNeeded(const std::string& dir, const std::string& name, std::uint32_t segment_size, int count);

}  // namespace walferry::pg
