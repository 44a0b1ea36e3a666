// push/send with several --to: builds the fan-out (pg/fanout.h) from the
// client options and runs it. docs/fanout.md.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/client_options.h"
#include "core/result.h"
#include "pg/fanout.h"

namespace walferry::cli {

// Ships `path` as `name` to every target of `a`; `tune` adjusts each target's
// sender options (what push/send set for one target). `wal_dir`: where a
// backlog entry without a known source is looked for (push: %p's directory).
// Prints one line per target that missed the file or refused it.
Status RunFanout(const ClientArgs& a, const std::vector<std::string>& targets,
                 const std::function<void(transport::SendOptions&)>& tune, const std::string& path,
                 const std::string& name, const std::string& wal_dir, const std::string& who);

// Builds the fan-out options (targets, backlog opened) without running it; the
// agent's drain loop uses it. `backlog` receives the opened backlog.
Result<pg::FanoutOptions> BuildFanout(const ClientArgs& a, const std::vector<std::string>& targets,
                                      const std::function<void(transport::SendOptions&)>& tune,
                                      std::unique_ptr<pg::Backlog>* backlog);

}  // namespace walferry::cli
