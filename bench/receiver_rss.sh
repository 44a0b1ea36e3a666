#!/usr/bin/env bash
# Receiver memory under idle and slowloris clients (issue 8): RSS of
# `walferry serve` (TLS, default limits except --max-connections 256 so that
# every client is served) at rest, with 200 silent TCP connections (no
# handshake), with 200 established idle sessions (TLS handshake + HELLO), and
# with 50 slowloris clients (HELLO, then a CHUNK header announcing a 16 MiB
# body and one byte per second), and with 20 "fat" slowloris clients that
# send all of that body but its last byte at once. Prints VmRSS/VmHWM in MiB for each phase.
#   WALFERRY_BIN=build/release/cli/walferry bash bench/receiver_rss.sh
# WF_RSS_BASELINE=/path/to/older/walferry adds the same phases for that binary.
set -euo pipefail
SRC_DIR=$(cd "$(dirname "$0")/.." && pwd)
WF=${WALFERRY_BIN:-$SRC_DIR/build/release/cli/walferry}
LC="$SRC_DIR/tests/tools/limits_client.py"
T=$(mktemp -d /tmp/wf-rss.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; rm -rf "$T"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mib() { awk -v k="$(grep "^$2:" "/proc/$1/status" | awk '{print $2}')" 'BEGIN{printf "%.1f", k/1024}'; }
"$WF" tls init "$T/tls" >/dev/null

run() {  # run LABEL BINARY
  local label=$1 bin=$2 port pid cpid
  port=$(free_port)
  "$bin" serve --root "$T/root-$label" --listen "127.0.0.1:$port" --tls-dir "$T/tls" --max-connections 256 \
    --handshake-timeout 600 --idle-timeout 600 >"$T/serve-$label.log" 2>&1 &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
  printf '%-10s %-28s rss %7s MiB\n' "$label" "at rest" "$(mib "$pid" VmRSS)"
  for phase in "idle 200" "established 200" "slowloris 50" "fat-slowloris 20"; do
    rm -f "$T/ready"
    # shellcheck disable=SC2086
    python3 "$LC" --port "$port" --tls-dir "$T/tls" --hold 600 --interval 1 --ready-file "$T/ready" $phase \
      >"$T/client.out" 2>&1 &
    cpid=$!; PIDS+=("$cpid")
    for _ in $(seq 1 600); do [ -s "$T/ready" ] && break; sleep 0.1; done
    [ -s "$T/ready" ] || { echo "clients did not get ready ($phase): $(cat "$T/client.out")"; exit 1; }
    sleep 5  # slowloris: five bytes each; idle: handshake threads settle
    printf '%-10s %-28s rss %7s MiB  (threads %s)\n' "$label" "$phase clients" "$(mib "$pid" VmRSS)" \
      "$(grep '^Threads:' "/proc/$pid/status" | awk '{print $2}')"
    kill "$cpid"; wait "$cpid" 2>/dev/null || true
    sleep 1
  done
  printf '%-10s %-28s hwm %7s MiB\n' "$label" "peak over the run" "$(mib "$pid" VmHWM)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run this "$WF"
if [ -n "${WF_RSS_BASELINE:-}" ]; then run baseline "$WF_RSS_BASELINE"; fi
