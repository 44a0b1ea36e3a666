#!/usr/bin/env bash
# Fan-out cost, side by side in one run: NSEG (default 40) real 16 MiB WAL
# segments pushed one call at a time (as PostgreSQL's archiver does) by
#   push --to A                       (one receiver)
#   push --to A --to B                (two receivers, quorum all)
#   push --to A --to B --quorum 1     with B stopped (each call records B's miss)
#   push --to A --to B --quorum 1     with B back (each call also drains 4 entries)
# Prints seconds, segments/s and each ratio to the single-receiver run.
# Usage: WALFERRY_BIN=build/release/cli/walferry bench/fanout_e2e.sh [NSEG]  (as root)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/../tests/e2e/lib/fanout.sh"
NSEG=${1:-40}
ensure_pg_user
fo2_setup
PGDATA=$(pg_init bench)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c wal_keep_size=16GB -c max_wal_size=16GB -c checkpoint_timeout=1h
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s $((NSEG * 4 / 5 + 5)) postgres >"$T/pgbench.log" 2>&1
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
pg_stop "$PGDATA"
mapfile -t SEGS < <(ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -"$NSEG")
[ "${#SEGS[@]}" -ge "$NSEG" ] || fail "only ${#SEGS[@]} segments"
A="127.0.0.1:${RCV_PORT[A]}"; B="127.0.0.1:${RCV_PORT[B]}"
fresh() { fo2_stop A; fo2_stop B; rm -rf "$T/root-A" "$T/root-B" "$T/bl"; fo2_receiver A; fo2_receiver B; }
run() {  # LABEL ARGS...: pushes every segment, prints seconds
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  for s in "${SEGS[@]}"; do "$WF" push --tls-dir "$T/tls-main" --backlog-dir "$T/bl" "$@" "$PGDATA/pg_wal/$s" 2>/dev/null \
    || fail "$label: push $s"; done
  t1=$(date +%s.%N)
  echo "$label $(echo "$t1 - $t0" | bc)"
}
fresh; one=$(run one --to "$A")
fresh; two=$(run two --to "$A" --to "$B")
fresh; fo2_stop B; down=$(run down --to "$A" --to "$B" --quorum 1)
fo2_receiver B
rm -rf "$T/root-A"; fo2_stop A; fo2_receiver A  # A starts empty again: same work as before
back=$(run back --to "$A" --to "$B" --quorum 1)
printf '%-44s %8s %10s %8s\n' "run ($NSEG segments of 16 MiB)" seconds "segments/s" ratio
base=${one#* }
for r in "$one" "$two" "$down" "$back"; do
  l=${r% *}; s=${r#* }
  case $l in
    one) d="push --to A";; two) d="push --to A --to B";;
    down) d="--quorum 1, B stopped (backlog grows)";; back) d="--quorum 1, B back (drains 4/call)";;
  esac
  printf '%-44s %8.2f %10.1f %8.2f\n' "$d" "$s" "$(echo "$NSEG / $s" | bc -l)" "$(echo "$s / $base" | bc -l)"
done
