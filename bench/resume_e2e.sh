#!/usr/bin/env bash
# Resume benchmark: `walferry send -` of a 2 GiB stream (a pipe) through a
# proxy that cuts the first 10 connections at random points. The transfer must
# complete byte-identical, and the bytes sent in total (client->server through
# the proxy, TLS included) must stay within 1.05x of an uncut run of the same
# stream. Prints the ratio.
#   WALFERRY_BIN=build/cli/walferry bench/resume_e2e.sh [SIZE_MIB] [CUTS] [SEED]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export WALFERRY_SOURCE_DIR=${WALFERRY_SOURCE_DIR:-$(dirname "$HERE")}
. "$WALFERRY_SOURCE_DIR/tests/e2e/lib/common.sh"
. "$WALFERRY_SOURCE_DIR/tests/tools/faults_lib.sh"
need_transfer_commands
tls_setup

SIZE_MIB=${1:-2048}
CUTS=${2:-10}
SEED=${3:-$RANDOM}
SIZE=$((SIZE_MIB << 20))
# Cut points per connection: spread so that about CUTS cuts happen before the
# stream ends (each connection is cut after 1%..14% of the stream).
LO=$((SIZE / 100))
HI=$((SIZE * 14 / 100))
ROOT="$T/root"
RPORT=$(free_port)
start_receiver "$ROOT" "$RPORT" --tls-dir "$T/tls" --store raw

gen() { { openssl enc -aes-128-ctr -nosalt -pass pass:resume -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c "$SIZE"; }
want=$(gen | sha256sum | cut -d' ' -f1)

run() {  # run NAME proxy-args...: prints "c2s_bytes seconds"
  local name=$1; shift
  start_proxy "$RPORT" "$@"
  local t0 t1
  t0=$(date +%s.%N)
  gen | "$WF" send - --name "$name" --to "127.0.0.1:$PROXY_PORT" --tls-dir "$T/tls-main" >>"$T/send.log" 2>&1 \
    || { stop_proxy >/dev/null; fail "send of $name failed: $(tail -2 "$T/send.log")"; }
  t1=$(date +%s.%N)
  local bytes
  bytes=$(stop_proxy)
  local got
  got=$(stored_sha "$(final_path "$ROOT" main "$name")")
  [ "$got" = "$want" ] || fail "$name: stored stream differs from the source"
  rm -f "$(final_path "$ROOT" main "$name")"
  echo "$bytes $(echo "$t1 - $t0" | bc)"
}

read -r base_bytes base_s < <(run uncut.bin --mode pass)
read -r cut_bytes cut_s < <(run cut.bin --mode cut --dir c2s --after "$LO:$HI" --faulty "$CUTS" --seed "$SEED")
faults=$(grep -cE 'conn [0-9]+: cut c2s' "$T/proxy.log" || true)
ratio=$(echo "scale=4; $cut_bytes / $base_bytes" | bc)
raw_ratio=$(echo "scale=4; $cut_bytes / $SIZE" | bc)
echo "resume_e2e: stream ${SIZE_MIB} MiB, seed $SEED, $faults cuts"
echo "resume_e2e: uncut run: $base_bytes bytes in ${base_s}s; cut run: $cut_bytes bytes in ${cut_s}s"
echo "resume_e2e: bytes ratio cut/uncut = $ratio (target <= 1.05); cut/stream size = $raw_ratio"
[ "$faults" -ge 1 ] || fail "no cut happened"
awk -v r="$ratio" 'BEGIN { exit !(r <= 1.05) }' || fail "sent $ratio x the bytes of an uncut run (> 1.05)"
stop_receiver
echo PASS
