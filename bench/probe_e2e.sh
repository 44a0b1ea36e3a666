#!/usr/bin/env bash
# Latency of the missing-file probes PostgreSQL makes at every standby start
# and at every end of the archive (00000002.history, 00000003.history, the next
# segment): restore_command run N times (default 200) for a name the archive
# does not hold, median and p90 wall milliseconds per call, side by side in
# one run:
#   cp /archive/%f %p                      (the PostgreSQL documentation's restore_command)
#   walferry get %f %p --from ROOT         (local archive)
#   walferry get %f %p --from HOST:PORT    (receiver on 127.0.0.1, TLS 1.3, mutual certificates)
#   walferry get %f %p --from HOST:PORT    (receiver on 127.0.0.1, --insecure-loopback)
# and, for scale, a present 16 MiB segment fetched locally and remotely.
# Every walferry probe must exit 1 with nothing on stderr (checked).
# Usage: WALFERRY_BIN=build/release/cli/walferry bench/probe_e2e.sh [N]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
N=${1:-200}
ROOT=$T/archive
mkdir -p "$ROOT/main/wal"
"$WF" tls init "$T/tls" --cluster main >/dev/null
TPORT=$(free_port); IPORT=$(free_port)
"$WF" serve --root "$ROOT" --listen 127.0.0.1:"$TPORT" --tls-dir "$T/tls" >"$T/serve-tls.log" 2>&1 &
WF_PIDS+=($!)
"$WF" serve --root "$ROOT" --listen 127.0.0.1:"$IPORT" --insecure-loopback >"$T/serve-insecure.log" 2>&1 &
WF_PIDS+=($!)
wait_port "$TPORT"; wait_port "$IPORT"
mkdir -p "$T/tls-client"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-client/"

# A present segment, for scale: push one real-looking segment (a real initdb one).
if [ -x "$PGBIN/initdb" ]; then
  ensure_pg_user
  D=$(pg_init probe)
  SEG=$(ls "$D/pg_wal" | grep -E '^[0-9A-F]{24}$' | head -1)
  "$WF" push "$D/pg_wal/$SEG" --to 127.0.0.1:"$IPORT" --cluster main --insecure-loopback || fail "push"
fi

declare -A MED P90
run() {  # NAME EXPECTED_RC CMD... (the name to fetch is appended, then the destination)
  local name=$1 want=$2; shift 2
  local ms=() i t0 t1 rc err
  for i in $(seq 1 "$N"); do
    rm -f "$T/dest"
    t0=$(date +%s%N)
    set +e
    err=$("$@" 2>&1 >/dev/null); rc=$?
    set -e
    t1=$(date +%s%N)
    [ "$rc" = "$want" ] || fail "$name: exit $rc, want $want ($err)"
    [ "$want" != 1 ] || [ -z "$err" ] || [ "${name#cp}" != "$name" ] || fail "$name printed on a missing file: $err"
    ms+=($(( (t1 - t0) / 1000 )))
  done
  local sorted
  sorted=$(printf '%s\n' "${ms[@]}" | sort -n)
  MED[$name]=$(echo "$sorted" | sed -n "$(( (N + 1) / 2 ))p")
  P90[$name]=$(echo "$sorted" | sed -n "$(( (N * 9 + 9) / 10 ))p")
}
MISSING=00000002.history
run "cp (missing)" 1 cp "$ROOT/main/wal/$MISSING" "$T/dest"
run "get local (missing)" 1 "$WF" get "$MISSING" "$T/dest" --from "$ROOT" --prefetch 0
run "get TLS 127.0.0.1 (missing)" 1 "$WF" get "$MISSING" "$T/dest" --from 127.0.0.1:"$TPORT" --tls-dir "$T/tls-client" --prefetch 0
run "get insecure 127.0.0.1 (missing)" 1 "$WF" get "$MISSING" "$T/dest" --from 127.0.0.1:"$IPORT" --cluster main --insecure-loopback --prefetch 0
run "get local (missing segment)" 1 "$WF" get 0000000100000000000000FE "$T/dest" --from "$ROOT" --prefetch 0
if [ -n "${SEG:-}" ]; then
  run "get local (16 MiB present)" 0 "$WF" get "$SEG" "$T/dest" --from "$ROOT" --prefetch 0
  run "get TLS 127.0.0.1 (16 MiB present)" 0 "$WF" get "$SEG" "$T/dest" --from 127.0.0.1:"$TPORT" --tls-dir "$T/tls-client" --prefetch 0
fi

printf '\n%-38s %10s %10s %8s\n' "restore_command, $N calls" "median ms" "p90 ms" "x cp"
for k in "cp (missing)" "get local (missing)" "get local (missing segment)" "get insecure 127.0.0.1 (missing)" \
         "get TLS 127.0.0.1 (missing)" "get local (16 MiB present)" "get TLS 127.0.0.1 (16 MiB present)"; do
  [ -n "${MED[$k]:-}" ] || continue
  printf '%-38s %10.2f %10.2f %8.1f\n' "$k" "$(echo "${MED[$k]} / 1000" | bc -l)" "$(echo "${P90[$k]} / 1000" | bc -l)" \
    "$(echo "${MED[$k]} / ${MED["cp (missing)"]}" | bc -l)"
done
