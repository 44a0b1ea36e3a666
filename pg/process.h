// Running the PostgreSQL client programs walferry wraps (psql, pg_ctl,
// pg_basebackup) and tar: capture their output, or stream through a pipe.
// No shell is involved; arguments are passed as they are.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/fd.h"
#include "core/result.h"

namespace walferry::pg {

struct RunResult {
  int exit_code = 0;  // the program's exit status; 128 + signal when killed
  std::string out;
  std::string err;
};
// Runs argv[0] (searched in PATH when it has no '/'), stdin from /dev/null,
// and collects stdout and stderr. kNotFound when the program does not exist.
// A non-zero exit is not an error here: callers read exit_code.
Result<RunResult> Run(const std::vector<std::string>& argv);

// A child process with one end of a pipe: its stdout (kFromChild) or its stdin
// (kToChild). stderr is inherited. The destructor kills (SIGKILL) and reaps a
// child that was not waited for.
class Child {
 public:
  enum class PipeEnd { kFromChild, kToChild };
  static Result<Child> Spawn(const std::vector<std::string>& argv, PipeEnd end);
  Child(Child&& o) noexcept;
  Child& operator=(Child&& o) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();
  int fd() const { return fd_.get(); }
  // Closes the pipe and waits; returns the exit code (128 + signal when killed).
  Result<int> Wait();
  pid_t pid() const { return pid_; }
  // SIGKILLs and reaps the child now (its exit code is lost), then closes the
  // pipe: the child never sees EOF on a pipe to it while it still runs.
  void Kill() { Reap(); }

 private:
  Child(pid_t pid, UniqueFd fd) : pid_(pid), fd_(std::move(fd)) {}
  void Reap();  // kills and reaps a child still running, then closes the pipe
  pid_t pid_ = -1;
  UniqueFd fd_;
};

// Copies everything from `in` to `out` until EOF on `in` (splice(2) where the
// kernel allows it, read/write otherwise). kIo/kNetwork-style errors from either
// side; EPIPE when the reader of `out` went away. The caller ignores SIGPIPE
// (library code leaves signal dispositions alone; the binary sets them).
Status Relay(int in, int out);

// Path of a PostgreSQL program: `pgbin`/NAME when pgbin is set; else
// /usr/lib/postgresql/<major>/bin/NAME when major > 0 and it exists; else NAME
// from PATH; else the newest /usr/lib/postgresql/*/bin/NAME; else NAME.
std::string FindPgProgram(const std::string& name, int major, const std::string& pgbin);

// Absolute path of the running walferry binary; "walferry" when PATH finds this
// very binary under that name (so generated commands stay short).
std::string SelfCommand();

}  // namespace walferry::pg
