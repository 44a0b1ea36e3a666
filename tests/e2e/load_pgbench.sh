#!/usr/bin/env bash
# The short CI version of bench/pgbench_load.sh: PostgreSQL 15 under pgbench
# -c 8 -N plus one bulk-insert session for 15 s with archive_command = walferry push, then walferry push
# through the agent. Asserts correctness only, never speed: every segment
# PostgreSQL marked .done during each run is on the receiver and
# byte-identical, at least 3 segments were archived per run, and the .ready
# backlog drains after the load stops (within 120 s).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
"$WALFERRY_BIN" agent --help >/dev/null 2>&1 || { echo "SKIP: agent not built" >&2; exit 77; }
[ -x "${PGBIN:-/usr/lib/postgresql/15/bin}/pgbench" ] || { echo "SKIP: pgbench not installed" >&2; exit 77; }
out=$(mktemp -d /tmp/wf-load-out.XXXXXX)
trap 'rm -rf "$out"' EXIT
WF_LOAD_SECONDS=15 WF_LOAD_TOOLS="wf_push wf_agent" WF_DRAIN_CAP_S=120 WF_DRAIN_STRICT=1 WF_LOAD_BULK=1 WF_LOAD_MIN_SEGMENTS=3 WF_LOAD_OUT="$out" \
  bash "$HERE/../../bench/pgbench_load.sh"
[ "$(wc -l <"$out/pgbench_load.csv")" -eq 3 ] || { cat "$out/pgbench_load.csv" >&2; echo "FAIL: csv rows" >&2; exit 1; }
echo "load_pgbench: ok"
