#!/usr/bin/env bash
# Faulted-transfer campaign (issue 8): COUNT transfers, each through its own
# tests/tools/fault_proxy.py with one random fault (cut, stall, bit flip,
# truncation, garbage, reordering; either direction; at a random offset; on
# the first 1..3 connections), a random kind (push of a WAL segment, send of
# a file, piped send) and, in turn, TLS or --insecure-loopback (where damaged
# bytes reach walferry's own checksums instead of TLS's MAC). Each must
# complete byte-identical or exit non-zero; no final name may ever hold a
# wrong or partial file. Prints the distribution of outcomes per fault and
# the violations (must be 0).
#   bash tests/campaigns/proxy.sh [COUNT]     (default 1000; CI runs 24)
set -euo pipefail
COUNT=${1:-1000}
export WALFERRY_SOURCE_DIR=${WALFERRY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$WALFERRY_SOURCE_DIR/tests/e2e/lib/common.sh"
. "$WALFERRY_SOURCE_DIR/tests/tools/faults_lib.sh"
need_transfer_commands
tls_setup
ROOT="$T/root"
SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/file.bin" $((2 << 20)) 1
make_file "$SRC/small.bin" 150000 2
SEG=000000010000000000000001
make_wal_segment "$SRC/$SEG" "$SEG" 7300000000000000002
expect_file main "$SEG" "$SRC/$SEG"
TPORT=$(free_port)
IPORT=$(free_port)
start_receiver "$ROOT" "$TPORT" --tls-dir "$T/tls" --store zstd
start_receiver "$ROOT" "$IPORT" --insecure-loopback --store zstd
MODES=(cut stall flip truncate garbage reorder)
KINDS=(push send pipe)
declare -A OUT=()
violations=0
for i in $(seq 1 "$COUNT"); do
  mode=${MODES[$((RANDOM % ${#MODES[@]}))]}
  kind=${KINDS[$((RANDOM % ${#KINDS[@]}))]}
  dir=c2s; [ $((RANDOM % 3)) -eq 0 ] && dir=s2c
  sec=tls; [ $((i % 2)) -eq 0 ] && sec=plain
  faulty=$((1 + RANDOM % 3))
  case $kind in
    push) src="$SRC/$SEG"; name=$SEG; rm -f "$ROOT"/main/wal/"$SEG"* ;;
    send) src="$SRC/file.bin"; [ $((RANDOM % 2)) -eq 0 ] && src="$SRC/small.bin"; name="f$i.bin" ;;
    pipe) src="$SRC/file.bin"; name="p$i.bin" ;;
  esac
  [ "$kind" = push ] || expect_file main "$name" "$src"
  size=$(stat -c %s "$src")
  if [ "$sec" = tls ]; then target=$TPORT; client=(--tls-dir "$T/tls-main"); else
    target=$IPORT; client=(--insecure-loopback --cluster main); fi
  hi=$size; [ "$dir" = s2c ] && hi=400  # the receiver sends little: HELLO, OPENED, ACKs
  start_proxy "$target" --mode "$mode" --dir "$dir" --after "1:$hi" \
    --seconds 3 --faulty "$faulty" --seed "$i" --xor 0x$((RANDOM % 7 + 1))0 >/dev/null 2>&1
  to=(--to "127.0.0.1:$PROXY_PORT" "${client[@]}")
  rc=0
  case $kind in
    push) timeout 180 "$WF" push "$src" "${to[@]}" >"$T/last.out" 2>&1 || rc=$? ;;
    send) timeout 180 "$WF" send "$src" --name "$name" "${to[@]}" >"$T/last.out" 2>&1 || rc=$? ;;
    pipe) timeout 180 "$WF" send - --name "$name" "${to[@]}" <"$src" >"$T/last.out" 2>&1 || rc=$? ;;
  esac
  stop_proxy >/dev/null
  stored=$(final_path "$ROOT" main "$name")
  if [ "$rc" -eq 0 ]; then
    if [ -z "$stored" ] || [ "$(stored_sha "$stored")" != "$(sha "$src")" ]; then
      echo "VIOLATION #$i: exit 0 but $name is not stored intact ($mode $dir $kind $sec)" >&2
      violations=$((violations + 1))
    fi
    outcome=identical
  elif [ "$rc" -eq 124 ]; then
    outcome=hung; echo "HUNG #$i: $mode $dir $kind $sec" >&2
  elif [ "$rc" -gt 125 ]; then
    outcome=signal; echo "VIOLATION #$i: died by a signal ($rc): $mode $dir $kind $sec" >&2
    violations=$((violations + 1))
  else
    outcome="exit$rc"
    [ "$(grep -c . "$T/last.out")" -le 1 ] || note "#$i: error longer than one line: $(head -3 "$T/last.out")"
  fi
  OUT["$mode $outcome"]=$(( ${OUT["$mode $outcome"]:-0} + 1 ))
  verify_root "$ROOT"  # fails the campaign on any wrong or partial final file
  if [ $((i % 50)) -eq 0 ]; then
    note "$i transfers, $violations violations: $(for k in "${!OUT[@]}"; do printf '%s=%s, ' "$k" "${OUT[$k]}"; done)"
  fi
done
kill -0 "$RECV_PID" 2>/dev/null || fail "a receiver died"
echo "proxy campaign: $COUNT faulted transfers, violations $violations"
for k in "${!OUT[@]}"; do echo "  $k ${OUT[$k]}"; done | sort
[ "$violations" -eq 0 ] || fail "$violations violations"
