#!/usr/bin/env bash
# kill -9 of the receiver at random moments during sends (a large file and a
# pipe) and during pushes, then restart it:
#  - every transfer that was acknowledged (exit 0) is intact, now and later;
#  - rerunning the same `send FILE` resumes (it sends far fewer bytes than the
#    file, counted by a pass-through proxy) and completes byte-identical;
#  - a pipe `send -` survives receiver restarts through its own reconnects;
#  - no partial file is ever under a final name.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
tls_setup

ROOT="$T/root"
SRC="$T/src"
mkdir -p "$SRC"
BIG=$((160 << 20))
make_file "$SRC/big.bin" $BIG 7
RPORT=$(free_port)
SERVE=(--tls-dir "$T/tls" --store raw)
CLIENT=(--tls-dir "$T/tls-main")

# incoming_bytes: bytes of temp data under ROOT/.incoming (0 if none).
incoming_bytes() {
  find "$ROOT/.incoming" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}'
}

# wait_incoming BYTES PID: waits until the receiver holds BYTES of temp data,
# or PID (the sender) ended. Returns 1 if the sender ended first.
wait_incoming() {
  local want=$1 pid=$2
  for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || return 1
    [ "$(incoming_bytes)" -ge "$want" ] && return 0
    sleep 0.05
  done
  fail "no progress: $(incoming_bytes) bytes incoming after 60 s"
}

start_receiver "$ROOT" "$RPORT" "${SERVE[@]}"

# --- A: file send; receiver AND sender killed mid-transfer; rerun resumes.
note "A: file send killed mid-transfer, then rerun"
expect_file main big.bin "$SRC/big.bin"
start_proxy "$RPORT" --mode pass
"$WF" send "$SRC/big.bin" --name big.bin --to "127.0.0.1:$PROXY_PORT" "${CLIENT[@]}" >>"$T/send.log" 2>&1 &
SPID=$!
WF_PIDS+=("$SPID")
if wait_incoming $((BIG / 2)) "$SPID"; then
  sleep "0.$((RANDOM % 5))"
  kill -9 "$SPID" 2>/dev/null || true
  kill_receiver
  src=0
  wait "$SPID" 2>/dev/null || src=$?
  first=$(stop_proxy)
  verify_root "$ROOT"
  # verify_root: anything under a final name is complete and identical (the
  # receiver may have committed just before the sender died). Exit 0 before
  # the kill means acknowledged: then it must be there.
  if [ "$src" -eq 0 ]; then
    assert_stored "$ROOT" main big.bin "$SRC/big.bin"
  fi
  if [ -n "$(final_path "$ROOT" main big.bin)" ]; then
    src=0  # committed before the kill: nothing to resume, the rerun only confirms
    note "A: the transfer was committed just before the kill; resume not exercised"
  fi
  start_receiver "$ROOT" "$RPORT" "${SERVE[@]}"
  start_proxy "$RPORT" --mode pass
  "$WF" send "$SRC/big.bin" --name big.bin --to "127.0.0.1:$PROXY_PORT" "${CLIENT[@]}" >>"$T/send.log" 2>&1 \
    || fail "A: rerun of the send failed: $(tail -1 "$T/send.log")"
  second=$(stop_proxy)
  note "A: first run sent $first bytes before the kill, the rerun $second bytes (file: $BIG)"
  [ "$src" -eq 0 ] || [ "$second" -lt $((BIG * 3 / 4)) ] || fail "A: rerun sent $second bytes for a $BIG-byte file: no resume"
  [ "$src" -eq 0 ] || [ $((first + second)) -lt $((BIG * 3 / 2)) ] || fail "A: $((first + second)) bytes in total: resume from too far back"
else
  wait "$SPID" || fail "A: send failed before any kill"
  stop_proxy >/dev/null
  note "A: send finished before the kill point (machine too fast); resume not exercised"
fi
assert_stored "$ROOT" main big.bin "$SRC/big.bin"
verify_root "$ROOT"

# --- B: pipe send; receiver killed and restarted while the sender keeps going.
note "B: pipe send across receiver restarts"
expect_file main pipe.bin "$SRC/big.bin"
cat "$SRC/big.bin" | "$WF" send - --name pipe.bin --to "127.0.0.1:$RPORT" "${CLIENT[@]}" >>"$T/send.log" 2>&1 &
SPID=$!
WF_PIDS+=("$SPID")
kills=0
for frac in 4 2; do
  if wait_incoming $((BIG / frac + (RANDOM % 8) * (1 << 20))) "$SPID"; then
    kill_receiver
    kills=$((kills + 1))
    verify_root "$ROOT"
    sleep "0.$((RANDOM % 8))"
    start_receiver "$ROOT" "$RPORT" "${SERVE[@]}"
  fi
done
wait "$SPID" || fail "B: pipe send failed after $kills receiver restarts: $(tail -1 "$T/send.log")"
note "B: pipe send completed across $kills receiver kills"
assert_stored "$ROOT" main pipe.bin "$SRC/big.bin"
verify_root "$ROOT"

# --- C: pushes (as PostgreSQL runs them) while the receiver is killed at
# random moments; failed pushes are retried as the archiver would.
note "C: pushes across receiver kills"
mkdir -p "$SRC/pg_wal"
SYSID=7300000000000000123
NSEG=16
for i in $(seq 1 $NSEG); do
  name=$(printf '00000001000000000000%04X' "$i")
  make_wal_segment "$SRC/pg_wal/$name" "$name" "$SYSID"
  expect_file main "$name" "$SRC/pg_wal/$name"
done
(
  # The killer: kills the receiver every 0.3..1.5 s and restarts it after a pause.
  for _ in $(seq 1 6); do
    sleep "$((RANDOM % 2)).$((RANDOM % 10))"
    pkill_pid=$(cat "$T/recv.pid" 2>/dev/null || true)
    [ -n "$pkill_pid" ] && kill -9 "$pkill_pid" 2>/dev/null || true
    sleep 0.3
    "$WF" serve --root "$ROOT" --listen "127.0.0.1:$RPORT" "${SERVE[@]}" >>"$T/serve.log" 2>&1 &
    echo $! >"$T/recv.pid"
  done
) &
KILLER=$!
WF_PIDS+=("$KILLER")
echo "$RECV_PID" >"$T/recv.pid"
RECV_PID=""  # the killer owns the receiver now
acked=()
failures=0
for i in $(seq 1 $NSEG); do
  name=$(printf '00000001000000000000%04X' "$i")
  for attempt in $(seq 1 40); do
    rc=0
    (cd "$SRC" && "$WF" push "pg_wal/$name" --to "127.0.0.1:$RPORT" "${CLIENT[@]}") >>"$T/push.log" 2>&1 || rc=$?
    [ "$rc" -le 125 ] || fail "C: push exit code $rc out of 1..125"
    if [ "$rc" -eq 0 ]; then
      assert_stored "$ROOT" main "$name" "$SRC/pg_wal/$name"
      acked+=("$name")
      break
    fi
    failures=$((failures + 1))
    verify_root "$ROOT"
    sleep 0.2
  done
  [ "$rc" -eq 0 ] || fail "C: push of $name never succeeded"
done
wait "$KILLER" || true
kill -9 "$(cat "$T/recv.pid")" 2>/dev/null || true
note "C: $NSEG pushes acknowledged, $failures failed attempts retried, $(grep -c 'listening on' "$T/serve.log") receiver starts in all"
# Every acknowledged segment is still intact after all the kills.
for name in "${acked[@]}"; do
  assert_stored "$ROOT" main "$name" "$SRC/pg_wal/$name"
done
verify_root "$ROOT"
# Re-pushing an acknowledged segment after a restart: identical -> exit 0.
start_receiver "$ROOT" "$RPORT" "${SERVE[@]}"
(cd "$SRC" && "$WF" push "pg_wal/${acked[0]}" --to "127.0.0.1:$RPORT" "${CLIENT[@]}") >>"$T/push.log" 2>&1 \
  || fail "C: re-push of an archived identical segment failed"
stop_receiver
echo PASS
