# Shared helpers for shell end-to-end tests. Source it:
#   . "$(dirname "$0")/lib/common.sh"
# Provides: WF (the walferry binary), a scratch dir $T removed on exit, fail/pass,
# free_port, and a throw-away PostgreSQL 15 cluster run as a non-root user.
set -euo pipefail

WF=${WALFERRY_BIN:?WALFERRY_BIN must point at the walferry binary}
# Absolute: archive_command and the agent run it from other working directories.
[[ $WF = /* ]] || WF=$(realpath -- "$WF")
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
WF_PG_USER=${WF_PG_USER:-wftest}
T=$(mktemp -d /tmp/wf-e2e.XXXXXX)
chmod 1777 "$T"  # the PostgreSQL test user writes logs here
WF_PIDS=()
# Every process this test starts inherits this tag, and a recorded pid is
# signalled only while its process still carries it: by the time cleanup runs,
# a sender that exited long ago may have left its pid to an unrelated process
# (pid_max is 32768 on these machines, and ctest runs tests side by side). A
# kill -9 of such stale pids once killed another campaign's zstd.
export WF_E2E_TAG="$T"

# wf_ours PID: PID is a live process of this test: a child of this shell (a
# background subshell's /proc environ is the shell's own, from before the
# export), or a process that carries the tag (everything exec'd after it).
wf_ours() {  # builtins only: cleanup runs it for every pid a campaign recorded
  local stat ppid env
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -r _ ppid _ <<<"${stat##*) }"  # the fields after "(comm)": state, ppid, ...
  [ "$ppid" = "$$" ] && return 0
  { mapfile -d '' env <"/proc/$1/environ"; } 2>/dev/null || return 1
  local e
  for e in "${env[@]}"; do [ "$e" = "WF_E2E_TAG=$T" ] && return 0; done
  return 1
}

# wf_kill SIGNAL PID...: signals those of the PIDs that are this test's (wf_ours).
wf_kill() {
  local sig=$1 pid
  shift
  for pid in "$@"; do
    [ -n "$pid" ] && wf_ours "$pid" && kill "-$sig" "$pid" 2>/dev/null || true
  done
}

wf_cleanup() {
  local rc=$?
  wf_kill 9 "${WF_PIDS[@]:-}"
  for d in "$T"/pg-*; do
    [ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
  done
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    echo "--- logs in $T (kept) ---" >&2
    tail -n 30 "$T"/*.log 2>/dev/null >&2 || true
  else
    rm -rf "$T"
  fi
  exit "$rc"
}
trap wf_cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
note() { echo "# $*" >&2; }
skip() { echo "SKIP: $*" >&2; exit 77; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until a TCP port on 127.0.0.1 accepts connections (10 s).
wait_port() {
  local port=$1
  for _ in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
    sleep 0.05
  done
  fail "nothing listening on port $port"
}

# Runs a command as the unprivileged PostgreSQL test user (or as ourselves when
# not root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$WF_PG_USER" -- "$@"
  else
    "$@"
  fi
}

ensure_pg_user() {
  [ -x "$PGBIN/initdb" ] || skip "PostgreSQL 15 not installed ($PGBIN)"
  if [ "$(id -u)" -eq 0 ] && ! id -u "$WF_PG_USER" >/dev/null 2>&1; then
    useradd --system --create-home --shell /bin/bash "$WF_PG_USER"
  fi
}

# pg_init NAME [initdb args...]: creates $T/pg-NAME owned by the test user.
pg_init() {
  local name=$1; shift
  ensure_pg_user
  local dir="$T/pg-$name"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown "$WF_PG_USER" "$dir"
  chmod 0700 "$dir"
  as_pg "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 --no-sync "$@" >"$T/initdb-$name.log" 2>&1 \
    || fail "initdb failed (see $T/initdb-$name.log)"
  echo "$dir"
}

# pg_start DIR PORT [extra postgres -c options as "-c k=v" ...]
pg_start() {
  local dir=$1 port=$2; shift 2
  as_pg "$PGBIN/pg_ctl" -D "$dir" -w -t 60 -l "$dir.log" \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off $*" start >/dev/null \
    || { tail -20 "$dir.log" >&2; fail "PostgreSQL did not start in $dir"; }
}

pg_stop() {
  as_pg "$PGBIN/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true
}

# psql_at PORT SQL: runs SQL as postgres on 127.0.0.1:PORT, unaligned output.
psql_at() {
  local port=$1; shift
  as_pg "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "$*"
}

# Makes $T (and everything under it) usable by the test user.
share_scratch() {
  [ "$(id -u)" -eq 0 ] && chown -R "$WF_PG_USER" "$T" || true
}
