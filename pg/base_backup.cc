#include "pg/base_backup.h"

#include "pg/process.h"

namespace walferry::pg {

Result<int> PipeBaseBackup(const std::vector<std::string>& producer, const std::vector<std::string>& consumer) {
  WF_ASSIGN(Child sender, Child::Spawn(consumer, Child::PipeEnd::kToChild));
  WF_ASSIGN(Child source, Child::Spawn(producer, Child::PipeEnd::kFromChild));
  Status relay = Relay(source.fd(), sender.fd());
  WF_ASSIGN(int source_rc, source.Wait());
  if (source_rc != 0 || !relay.ok()) {
    sender.Kill();  // before EOF reaches it: nothing is committed
    if (source_rc != 0) {
      return Error(ErrorCode::kIo, "pg_basebackup failed (exit " + std::to_string(source_rc) + "); nothing was stored");
    }
    return relay.error().Wrap("sending the base backup");
  }
  return sender.Wait();
}

}  // namespace walferry::pg
