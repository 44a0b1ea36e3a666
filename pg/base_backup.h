// Shipping a base backup: pg_basebackup's tar stream piped into a sender
// (`walferry send -`), committed only when pg_basebackup succeeded.
//
// Thread-safety: blocks the calling thread; the caller ignores SIGPIPE
// (library code leaves signal dispositions alone).
#pragma once

#include <string>
#include <vector>

#include "core/result.h"

namespace walferry::pg {

// Spawns `consumer` (reads the tar on stdin, commits it at EOF) and `producer`
// (writes the tar on stdout), relays one into the other, and ends the
// consumer's input only once the producer exited 0: when the producer fails
// or the relay breaks, the consumer is killed before it sees EOF, so nothing
// is stored under the name. Returns the consumer's exit status (0: the backup
// is durable on the receiver). Errors: spawn failures; kIo "pg_basebackup
// failed (exit N); nothing was stored"; the relay's error, wrapped "sending
// the base backup".
Result<int> PipeBaseBackup(const std::vector<std::string>& producer, const std::vector<std::string>& consumer);

}  // namespace walferry::pg
