#!/usr/bin/env bash
# Transfers through a fault-injecting proxy (cuts, stalls, flipped bytes,
# truncation, garbage) over TLS and over --insecure-loopback (where flipped
# bytes reach the protocol's own checksums instead of TLS's MAC). Every
# transfer either completes byte-identical or exits non-zero, and after every
# case no file under a final name is wrong or partial. When only the first
# connection is faulty, the sender's own retry must complete the transfer.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
tls_setup

ROOT="$T/root"
SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/big.bin" $((4 << 20)) 1
make_file "$SRC/small.bin" 70000 2
head -c $((4 << 20)) /dev/zero | tr '\0' 'w' >"$SRC/text.bin"  # compressible
SIZE_BIG=$((4 << 20))

run_case() {  # run_case LABEL MUST_SUCCEED SECURITY FILE NAME proxy-args...
  local label=$1 must=$2 sec=$3 file=$4 name=$5; shift 5
  local args=(--tls-dir "$T/tls-main")
  [ "$sec" = insecure ] && args=(--insecure-loopback --cluster main)
  start_proxy "$RPORT" "$@"
  expect_file main "$name" "$file"
  local rc=0 pipe_rc=0
  if [ "${PIPE:-0}" = 1 ]; then
    cat "$file" | timeout 100 "$WF" send - --name "$name" --to "127.0.0.1:$PROXY_PORT" "${args[@]}" \
      >>"$T/send.log" 2>&1 || rc=$?
  else
    timeout 100 "$WF" send "$file" --name "$name" --to "127.0.0.1:$PROXY_PORT" "${args[@]}" \
      >>"$T/send.log" 2>&1 || rc=$?
  fi
  stop_proxy >/dev/null
  [ "$rc" -eq 124 ] && fail "$label: send hung (killed by timeout)"
  [ "$rc" -le 125 ] || fail "$label: exit code $rc out of 1..125"
  verify_root "$ROOT"
  if [ "$rc" -eq 0 ]; then
    assert_stored "$ROOT" main "$name" "$file"
  elif [ "$must" = yes ]; then
    tail -5 "$T/send.log" >&2
    fail "$label: exit $rc although only the first connection was faulty"
  else
    # A failed send may leave resume state but never a final file that
    # differs; a clean rerun completes it.
    timeout 100 "$WF" send "$file" --name "$name" --to "127.0.0.1:$RPORT" "${args[@]}" \
      >>"$T/send.log" 2>&1 || fail "$label: clean rerun after exit $rc failed"
    assert_stored "$ROOT" main "$name" "$file"
  fi
  verify_root "$ROOT"
  note "$label: exit $rc at ${SECONDS}s ($(grep -c 'conn' "$T/proxy.log" 2>/dev/null || echo 0) proxy events so far)"
}

for sec in tls insecure; do
  RPORT=$(free_port)
  if [ "$sec" = tls ]; then
    start_receiver "$ROOT" "$RPORT" --tls-dir "$T/tls" --store raw
  else
    start_receiver "$ROOT" "$RPORT" --insecure-loopback --store zstd
  fi
  s=$sec
  # Cuts in both directions at random points; the retry completes.
  run_case "$s cut c2s early" yes $s "$SRC/big.bin" "$s-cut1.bin" --mode cut --dir c2s --after 200:5000 --faulty 1 --seed 11
  run_case "$s cut c2s mid" yes $s "$SRC/big.bin" "$s-cut2.bin" --mode cut --dir c2s --after 100000:$SIZE_BIG --faulty 2 --seed 12
  run_case "$s cut s2c" yes $s "$SRC/big.bin" "$s-cut3.bin" --mode cut --dir s2c --after 1:400 --faulty 1 --seed 13
  PIPE=1 run_case "$s pipe cut c2s" yes $s "$SRC/big.bin" "$s-pipecut.bin" --mode cut --dir c2s --after 100000:$SIZE_BIG --faulty 3 --seed 14
  # Truncation (FIN mid-stream) and stalls shorter than the I/O timeout.
  run_case "$s truncate c2s" yes $s "$SRC/big.bin" "$s-trunc.bin" --mode truncate --dir c2s --after 3000:$SIZE_BIG --faulty 1 --seed 15
  run_case "$s truncate s2c" yes $s "$SRC/small.bin" "$s-trunc2.bin" --mode truncate --dir s2c --after 1:300 --faulty 1 --seed 16
  run_case "$s stall" yes $s "$SRC/text.bin" "$s-stall.bin" --mode stall --dir c2s --after 50000 --seconds 2 --faulty 1
  # Flipped bytes and injected garbage: TLS rejects the record (connection
  # error, retry); in plain mode the frame checks or chunk/stream hashes must
  # refuse it. Either way: identical or non-zero.
  for i in 1 2 3; do
    run_case "$s flip c2s #$i" no $s "$SRC/big.bin" "$s-flip$i.bin" --mode flip --dir c2s --after 8192:$SIZE_BIG --faulty 1 --seed $((20 + i))
  done
  run_case "$s flip c2s in a header" no $s "$SRC/small.bin" "$s-fliph.bin" --mode flip --dir c2s --after 40:200 --xor 0x80 --faulty 1 --seed 25
  run_case "$s flip s2c" no $s "$SRC/small.bin" "$s-flips.bin" --mode flip --dir s2c --after 0:200 --xor 0x40 --faulty 1 --seed 26
  run_case "$s garbage c2s" no $s "$SRC/big.bin" "$s-garbage.bin" --mode garbage --dir c2s --after 10000:$SIZE_BIG --faulty 1 --seed 27
  # Every connection faulty: the sender must give up with a non-zero exit
  # (never 0 without a COMMITTED) and leave no final file.
  start_proxy "$RPORT" --mode cut --dir c2s --after 1000:60000 --seed 30
  expect_file main "$s-never.bin" "$SRC/big.bin"
  rc=0
  if [ "$sec" = tls ]; then
    timeout 110 "$WF" send "$SRC/big.bin" --name "$s-never.bin" --to "127.0.0.1:$PROXY_PORT" --tls-dir "$T/tls-main" --retries 3 >>"$T/send.log" 2>&1 || rc=$?
  else
    timeout 110 "$WF" send "$SRC/big.bin" --name "$s-never.bin" --to "127.0.0.1:$PROXY_PORT" --insecure-loopback --cluster main --retries 3 >>"$T/send.log" 2>&1 || rc=$?
  fi
  stop_proxy >/dev/null
  [ "$rc" -ne 0 ] || fail "$s: send exited 0 although every connection was cut before the end"
  [ "$rc" -ne 2 ] || fail "$s: usage error: $(tail -1 "$T/send.log")"
  [ "$rc" -ne 124 ] || fail "$s: send kept retrying for over 110 s"
  [ -z "$(final_path "$ROOT" main "$s-never.bin")" ] || fail "$s: final file after a failed send"
  note "$s all-cut: exit $rc: $(tail -1 "$T/send.log")"
  verify_root "$ROOT"
  stop_receiver
done
note "proxy log: $(grep -c 'conn' "$T/proxy.log") fault events"
echo PASS
