#!/usr/bin/env bash
# kill -9 campaign (issue 8): ROUNDS rounds; each starts a mix of transfers
# against a TLS receiver (pushes of WAL segments, a file send, a piped send
# of a large stream, small files that are mostly at COMMIT when the kill
# lands), then kill -9s the receiver (most rounds) or a sender (the others)
# at a random moment, restarts the receiver and reruns every transfer that
# did not exit 0. Invariant after every round:
#   - every transfer that exited 0 is under its final name, byte-identical;
#   - no final name holds a partial or wrong file (verify_root);
#   - every interrupted transfer, rerun, completes (resuming where it can).
# Prints: rounds, kills (receiver/sender), transfers ok, reruns, resumes
# (reruns that sent less than the whole file, counted in the receiver log),
# violations (must be 0).
#   bash tests/campaigns/kill9.sh [ROUNDS]        (default 200; CI runs 6)
# Env: WF_KILL9_PIPE_MB (size of the piped stream, default 2048; CI: 64).
set -euo pipefail
ROUNDS=${1:-200}
export WALFERRY_SOURCE_DIR=${WALFERRY_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$WALFERRY_SOURCE_DIR/tests/e2e/lib/common.sh"
. "$WALFERRY_SOURCE_DIR/tests/tools/faults_lib.sh"
need_transfer_commands
tls_setup
PIPE_MB=${WF_KILL9_PIPE_MB:-2048}
ROOT="$T/root"
SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/file.bin" $((24 << 20)) 1
for i in 1 2 3 4; do make_file "$SRC/s$i.bin" $((200000 + i * 1000)) $((10 + i)); done
SYSID=7300000000000000001
for i in $(seq 1 3); do
  name=$(printf '00000001000000000000%04X' "$i")
  make_wal_segment "$SRC/$name" "$name" "$SYSID"
done
# The piped stream: deterministic, so a rerun sends the same bytes.
pipe_src() {
  { openssl enc -aes-128-ctr -nosalt -pass pass:wfpipe -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c $((PIPE_MB << 20))
}
PIPE_SHA=$(pipe_src | sha256sum | cut -d' ' -f1)
mkdir -p "$T/expected/main"
echo "$PIPE_SHA" >"$T/expected/main/pipe.bin"
expect_file main file.bin "$SRC/file.bin"
for i in 1 2 3 4; do expect_file main "s$i.bin" "$SRC/s$i.bin"; done
for f in "$SRC"/0000*; do expect_file main "$(basename "$f")" "$f"; done
RPORT=$(free_port)
CLIENT=(--to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --retries 2)

declare -A DONE=()  # transfer -> 1 once it exited 0
kills_r=0 kills_s=0 ok=0 reruns=0 violations=0

# start_one NAME: the transfer NAME in the background; sets its pid in PID_OF.
declare -A PID_OF=()
start_one() {
  local n=$1
  case $n in
    pipe.bin) "$WF" send - --name pipe.bin "${CLIENT[@]}" < <(pipe_src) >>"$T/send-$n.log" 2>&1 & ;;
    file.bin) "$WF" send "$SRC/file.bin" --name file.bin "${CLIENT[@]}" >>"$T/send-$n.log" 2>&1 & ;;
    s*.bin) "$WF" send "$SRC/$n" --name "$n" "${CLIENT[@]}" >>"$T/send-$n.log" 2>&1 & ;;
    *) "$WF" push "$SRC/$n" "${CLIENT[@]}" >>"$T/send-$n.log" 2>&1 & ;;
  esac
  PID_OF[$n]=$!
  WF_PIDS+=("$!")
}

check_acked() {
  local n p
  for n in "${!DONE[@]}"; do
    p=$(final_path "$ROOT" main "$n")
    if [ -z "$p" ] || [ "$(stored_sha "$p")" != "$(cat "$T/expected/main/$n")" ]; then
      echo "VIOLATION: $n exited 0 but is not intact under its final name" >&2
      violations=$((violations + 1))
    fi
  done
}

ALL=(pipe.bin file.bin s1.bin s2.bin s3.bin s4.bin)
for f in "$SRC"/0000*; do ALL+=("$(basename "$f")"); done

start_receiver "$ROOT" "$RPORT" --tls-dir "$T/tls" --store zstd
for round in $(seq 1 "$ROUNDS"); do
  # Every round starts from an empty archive of the big ones, so there is
  # something in flight to kill; small ones keep what they have (identical).
  rm -f "$ROOT"/main/files/pipe.bin* "$ROOT"/main/files/file.bin*
  unset 'DONE[pipe.bin]' 'DONE[file.bin]'
  for n in "${ALL[@]}"; do
    case $n in s*.bin | 0000*) rm -f "$ROOT"/main/*/"$n"*; unset "DONE[$n]" ;; esac
  done
  PID_OF=()
  for n in "${ALL[@]}"; do start_one "$n"; done
  sleep "$((RANDOM % 3)).$((RANDOM % 10))"
  if [ $((RANDOM % 4)) -eq 0 ]; then
    victim=${ALL[$((RANDOM % ${#ALL[@]}))]}
    wf_kill 9 "${PID_OF[$victim]}"  # it may have exited already, its pid reused
    kills_s=$((kills_s + 1))
  fi
  kill_receiver
  kills_r=$((kills_r + 1))
  for n in "${ALL[@]}"; do
    if wait "${PID_OF[$n]}" 2>/dev/null; then DONE[$n]=1; ok=$((ok + 1)); fi
  done
  verify_root "$ROOT" || violations=$((violations + 1))
  start_receiver "$ROOT" "$RPORT" --tls-dir "$T/tls" --store zstd
  check_acked
  # Rerun what did not exit 0: it must complete now (no faults this time).
  for n in "${ALL[@]}"; do
    [ -n "${DONE[$n]:-}" ] && continue
    reruns=$((reruns + 1))
    start_one "$n"
  done
  for n in "${ALL[@]}"; do
    [ -n "${DONE[$n]:-}" ] && continue
    if wait "${PID_OF[$n]}"; then
      DONE[$n]=1; ok=$((ok + 1))
    else
      echo "VIOLATION: rerun of $n failed: $(tail -1 "$T/send-$n.log")" >&2
      violations=$((violations + 1))
    fi
  done
  check_acked
  verify_root "$ROOT" || violations=$((violations + 1))
  [ $((round % 10)) -eq 0 ] && note "round $round: kills $kills_r+$kills_s ok $ok reruns $reruns violations $violations"
done
stop_receiver
resumes=$(grep -c "resumed_from=" "$T/serve.log" || true)
echo "kill9 campaign: rounds $ROUNDS receiver_kills $kills_r sender_kills $kills_s transfers_ok $ok reruns $reruns resumes $resumes violations $violations"
[ "$violations" -eq 0 ] || fail "$violations violations"
