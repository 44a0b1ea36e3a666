#!/usr/bin/env bash
# The receiver's shared buffer budget (serve --max-buffer-mb), with the real
# binary over real sockets:
#   1. 20 senders at once, each a 32 MiB file in 16 MiB chunks (half
#      incompressible, sent raw; half compressible, decompressed by the
#      receiver): the receiver's peak RSS (VmHWM) stays under the budget plus a
#      fixed overhead (without the budget: 20 x ~32 MiB); every send completes
#      or fails with one line, and every one that exited 0 is stored intact.
#   2. 20 hostile clients that each send a nearly complete 16 MiB frame and
#      stall: the peak stays under the budget plus the overhead, the ones that
#      get no memory are told "receiver busy", and an honest send still works.
#   3. 30 clients FETCH a 32 MiB entry at once and read nothing for 12 s (the
#      receiver's sends block while it holds its read buffers): the peak stays
#      under a 60 MiB budget plus the overhead (without FETCH in the budget:
#      30 x ~12 MiB); each FETCH completes or is told "receiver busy"; a `get`
#      afterwards is byte-identical.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
LC="$SRC_DIR/tests/tools/limits_client.py"
grep -q -- --max-buffer-mb <<<"$("$WF" serve --help)" || fail "serve --help does not document --max-buffer-mb"
BUDGET_MB=100
OVERHEAD_MB=48  # binary, libraries, 20 threads, codec contexts, TLS-less sockets
if ldd "$WF" 2>/dev/null | grep -Eq 'lib(asan|tsan)'; then
  # A sanitized build: shadow memory and redzones on top of every allocation,
  # freed memory quarantined (here: not, so that it goes back). The bound still
  # fails a receiver without a budget (623 MiB measured in a Release build).
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
  OVERHEAD_MB=$((BUDGET_MB + 96))
  note "sanitized build: allowing $OVERHEAD_MB MiB over the budget"
fi
N=20
EXIT_NETWORK=5  # cli/commands.h kExitNetwork

SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/r.bin" $((32 << 20)) 1
make_file "$SRC/seed.bin" $((24 << 20)) 2
{ base64 -w 76 "$SRC/seed.bin" || true; } | head -c $((32 << 20)) >"$SRC/c.bin"  # compresses ~4:3
ROOT="$T/root"
mkdir -p "$T/expected/main"
sha_r=$(sha "$SRC/r.bin") sha_c=$(sha "$SRC/c.bin")
for i in $(seq 1 "$N"); do  # what expect_file records, hashed once
  if [ $((i % 2)) -eq 0 ]; then echo "$sha_r" >"$T/expected/main/f$i.bin"; else echo "$sha_c" >"$T/expected/main/f$i.bin"; fi
done
expect_file main honest.bin "$SRC/seed.bin"
expect_file main fetch.bin "$SRC/r.bin"

hwm_mib() { awk '/^VmHWM/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

# --- 1. many senders with 16 MiB chunks -----------------------------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --max-buffer-mb "$BUDGET_MB" --max-transfers-per-cluster 32
grep -q "buffers $BUDGET_MB MiB" "$T/serve.log" || fail "start line does not show the buffer budget"
base=$(hwm_mib "$RECV_PID")
pids=()
t0=$(date +%s)
for i in $(seq 1 "$N"); do
  src="$SRC/c.bin"; [ $((i % 2)) -eq 0 ] && src="$SRC/r.bin"
  timeout 300 "$WF" send "$src" --name "f$i.bin" --to "127.0.0.1:$PORT" --insecure-loopback --cluster main \
    --chunk-kib 16384 --retries 12 >"$T/send-$i.out" 2>&1 &
  pids+=("$!")
done
ok=0 failed=0
for i in $(seq 1 "$N"); do
  rc=0
  wait "${pids[$((i - 1))]}" || rc=$?
  if [ "$rc" -eq 0 ]; then
    assert_stored "$ROOT" main "f$i.bin" "$(if [ $((i % 2)) -eq 0 ]; then echo "$SRC/r.bin"; else echo "$SRC/c.bin"; fi)"
    ok=$((ok + 1))
  else
    [ "$rc" -ne 124 ] || fail "send $i hung"
    [ "$rc" -le 125 ] || fail "send $i died by a signal ($rc)"
    [ "$(grep -c . "$T/send-$i.out")" -le 1 ] || fail "send $i: error is not one line: $(cat "$T/send-$i.out")"
    # Out of retries while the receiver was busy: its "receiver busy", or the
    # connection it closed after saying so (both the network exit code).
    [ "$rc" -eq "$EXIT_NETWORK" ] || fail "send $i failed for another reason (exit $rc): $(cat "$T/send-$i.out")"
    [ -z "$(final_path "$ROOT" main "f$i.bin")" ] || fail "send $i failed but f$i.bin is under its final name"
    failed=$((failed + 1))
  fi
done
peak=$(hwm_mib "$RECV_PID")
busy=$(grep -c "receiver busy" "$T/serve.log" || true)
note "1: $N senders, 16 MiB chunks, budget $BUDGET_MB MiB: ok $ok failed $failed (busy refusals $busy) in $(( $(date +%s) - t0 )) s; receiver VmHWM $peak MiB (at rest $base MiB)"
verify_root "$ROOT"
[ "$peak" -le $((BUDGET_MB + OVERHEAD_MB)) ] || fail "receiver peak RSS $peak MiB > budget $BUDGET_MB + $OVERHEAD_MB MiB"
[ "$ok" -ge $((N / 2)) ] || fail "only $ok of $N sends completed"
kill -0 "$RECV_PID" || fail "receiver died"
stop_receiver

# --- 2. hostile clients holding nearly complete 16 MiB frames --------------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --max-buffer-mb "$BUDGET_MB" --idle-timeout 20
out=$(python3 "$LC" --port "$PORT" --hold 40 fat-slowloris "$N")
peak=$(hwm_mib "$RECV_PID")
busy=$(grep -c "receiver busy" "$T/serve.log" || true)
note "2: $N clients each holding 16 MiB - 1 byte of a frame: $out; receiver busy told $busy; VmHWM $peak MiB"
[ "$peak" -le $((BUDGET_MB + OVERHEAD_MB)) ] || fail "receiver peak RSS $peak MiB > budget $BUDGET_MB + $OVERHEAD_MB MiB"
[ "$busy" -ge 1 ] || fail "no client was told the receiver is busy"
[[ $out == "connections $N closed $N "* ]] || fail "hostile connections not all closed: $out"
"$WF" send "$SRC/seed.bin" --name honest.bin --to "127.0.0.1:$PORT" --insecure-loopback --cluster main \
  --chunk-kib 16384 >"$T/honest.out" 2>&1 || fail "honest send after the hostile clients failed: $(cat "$T/honest.out")"
assert_stored "$ROOT" main honest.bin "$SRC/seed.bin"
verify_root "$ROOT"
stop_receiver

# --- 3. many FETCHes that read nothing: their read buffers are in the budget ------------------
FETCH_BUDGET_MB=60
N_FETCH=30
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --max-buffer-mb "$FETCH_BUDGET_MB"
"$WF" send "$SRC/r.bin" --name fetch.bin --to "127.0.0.1:$PORT" --insecure-loopback --cluster main \
  >"$T/fetch-send.out" 2>&1 || fail "send of fetch.bin failed: $(cat "$T/fetch-send.out")"
out=$(python3 "$LC" --port "$PORT" --hold 12 --name fetch.bin slow-fetch "$N_FETCH")
peak=$(hwm_mib "$RECV_PID")
note "3: $N_FETCH FETCHes of a 32 MiB entry reading nothing for 12 s, budget $FETCH_BUDGET_MB MiB: $out; VmHWM $peak MiB"
[ "$peak" -le $((FETCH_BUDGET_MB + OVERHEAD_MB)) ] || fail "receiver peak RSS $peak MiB > budget $FETCH_BUDGET_MB + $OVERHEAD_MB MiB"
read -r _ n _ complete _ busy _ other _ <<<"$out"
[ "$n" = "$N_FETCH" ] && [ "$other" = 0 ] || fail "FETCHes that neither completed nor were told busy: $out"
[ "$complete" -ge 1 ] || fail "no FETCH completed: $out"
[ "$busy" -ge 1 ] || fail "no FETCH was told the receiver is busy (are FETCHes in the budget?): $out"
"$WF" get fetch.bin "$T/fetched.bin" --from "127.0.0.1:$PORT" --insecure-loopback --cluster main \
  >"$T/get.out" 2>&1 || fail "get after the FETCHes failed: $(cat "$T/get.out")"
cmp -s "$T/fetched.bin" "$SRC/r.bin" || fail "get after the FETCHes: content differs"
kill -0 "$RECV_PID" || fail "receiver died"
verify_root "$ROOT"
stop_receiver
echo PASS
