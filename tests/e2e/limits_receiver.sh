#!/usr/bin/env bash
# Receiver resource limits, with the real binary over real sockets: the
# handshake deadline (plain TCP and TLS), the idle deadline against slowloris
# clients, max connections, max transfers per cluster, the temp-space cap per
# cluster. Each refusal is one clear line (receiver log and/or sender error),
# nothing is lost, and the receiver keeps serving honest clients.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
LC="$SRC_DIR/tests/tools/limits_client.py"
grep -q -- --idle-timeout <<<"$("$WF" serve --help)" || fail "serve --help does not document --idle-timeout"

SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/small.bin" 200000 1
make_file "$SRC/big.bin" 3000000 2
ROOT="$T/root"
expect_file main small.bin "$SRC/small.bin"
expect_file main small2.bin "$SRC/small.bin"

send_ok() {  # send_ok PORT NAME: an honest client still gets through
  "$WF" send "$SRC/small.bin" --name "$2" --to "127.0.0.1:$1" --insecure-loopback --cluster main \
    >>"$T/send.log" 2>&1 || fail "honest send of $2 failed: $(tail -2 "$T/send.log")"
}

# --- 1. handshake deadline and idle deadline (plain TCP) -----------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --store raw --handshake-timeout 1 --idle-timeout 2
out=$(python3 "$LC" --port "$PORT" --hold 15 idle 3)
note "idle: $out"
[[ $out == "connections 3 closed 3 "* ]] || fail "silent connections not dropped: $out"
grep -q "dropped .*: no HELLO within 1 s (serve --handshake-timeout)" "$T/serve.log" \
  || fail "no log line for the handshake deadline"
out=$(python3 "$LC" --port "$PORT" --hold 20 --interval 0.5 slowloris 3)
note "slowloris: $out"
[[ $out == "connections 3 closed 3 "* ]] || fail "slowloris connections not dropped: $out"
grep -q "dropped .*: no frame for 2 s (serve --idle-timeout)" "$T/serve.log" \
  || fail "no log line for the idle deadline"
send_ok "$PORT" small.bin
stop_receiver

# --- 2. max connections ----------------------------------------------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --store raw --max-connections 3 --handshake-timeout 30
python3 "$LC" --port "$PORT" --hold 20 --ready-file "$T/idle.ready" --pid-file "$T/idle.pid" idle 3 \
  >"$T/idle.out" 2>&1 &
IDLE_PID=$!
WF_PIDS+=("$IDLE_PID")
for _ in $(seq 1 100); do [ -s "$T/idle.ready" ] && break; sleep 0.05; done
sleep 0.5  # let the receiver take all three
if "$WF" send "$SRC/small.bin" --name busy.bin --to "127.0.0.1:$PORT" --insecure-loopback --cluster main \
    --retries 0 >"$T/busy.out" 2>&1; then
  fail "a 4th connection was served with --max-connections 3"
fi
grep -q "too many connections" "$T/busy.out" || fail "sender error does not say why: $(cat "$T/busy.out")"
[ "$(wc -l <"$T/busy.out")" -le 2 ] || fail "sender error is not short: $(cat "$T/busy.out")"
grep -q "too many connections, refusing" "$T/serve.log" || fail "no log line for max connections"
[ -z "$(final_path "$ROOT" main busy.bin)" ] || fail "busy.bin stored although refused"
kill "$IDLE_PID"; wait "$IDLE_PID" 2>/dev/null || true
send_ok "$PORT" small.bin
stop_receiver

# --- 3. max transfers per cluster --------------------------------------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --store raw --max-transfers-per-cluster 2
out=$(python3 "$LC" --port "$PORT" --hold 0 hold-open 3)
note "hold-open: $out"
grep -q "^opened 2 refused 1" <<<"$out" || fail "3 concurrent OPENs with a limit of 2: $out"
grep -q "max-transfers-per-cluster 2" <<<"$out" || fail "the refused OPEN's ERROR does not say why: $out"
python3 "$LC" --port "$PORT" --hold 30 --ready-file "$T/hold.ready" hold-open 2 >"$T/hold.out" 2>&1 &
HOLD_PID=$!
WF_PIDS+=("$HOLD_PID")
for _ in $(seq 1 200); do [ -s "$T/hold.ready" ] && break; sleep 0.05; done
grep -q "^opened 2 refused 0" "$T/hold.out" || fail "two transfers not opened: $(cat "$T/hold.out")"
if "$WF" send "$SRC/small.bin" --name third.bin --to "127.0.0.1:$PORT" --insecure-loopback --cluster main \
    --retries 0 >"$T/third.out" 2>&1; then
  fail "a third transfer of cluster main ran with --max-transfers-per-cluster 2"
fi
grep -q "already has 2 transfers in progress (serve --max-transfers-per-cluster 2)" "$T/third.out" \
  || fail "sender error does not say why: $(cat "$T/third.out")"
# Another cluster is not affected.
expect_file other small.bin "$SRC/small.bin"
"$WF" send "$SRC/small.bin" --name small.bin --to "127.0.0.1:$PORT" --insecure-loopback --cluster other \
  >>"$T/send.log" 2>&1 || fail "cluster other was limited by cluster main's transfers"
kill "$HOLD_PID"; wait "$HOLD_PID" 2>/dev/null || true
sleep 0.3
send_ok "$PORT" small2.bin
stop_receiver

# --- 4. temp space cap per cluster ---------------------------------------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --insecure-loopback --store raw --max-incoming-mib 1
if "$WF" send "$SRC/big.bin" --name big.bin --to "127.0.0.1:$PORT" --insecure-loopback --cluster main \
    --chunk-kib 256 >"$T/big.out" 2>&1; then
  fail "3 MB transfer accepted with a 1 MiB temp cap"
fi
grep -q "would exceed its cap of 1 MiB (serve --max-incoming-mib)" "$T/big.out" \
  || fail "sender error does not name the cap: $(cat "$T/big.out")"
[ -z "$(final_path "$ROOT" main big.bin)" ] || fail "big.bin under a final name"
[ -z "$(find "$ROOT/.incoming" -name '*.data' -size +0)" ] || fail "temp data of the dropped transfer left behind"
send_ok "$PORT" small.bin   # the cap was released
stop_receiver

# --- 5. TLS handshake deadline -------------------------------------------------------------
tls_setup
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --tls-dir "$T/tls" --store raw --handshake-timeout 1
out=$(python3 "$LC" --port "$PORT" --hold 15 idle 2)
note "tls idle: $out"
[[ $out == "connections 2 closed 2 "* ]] || fail "silent TLS connections not dropped: $out"
grep -q "TLS handshake with .* timed out" "$T/serve.log" || fail "no log line for the TLS handshake deadline"
"$WF" send "$SRC/small.bin" --name small.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-main" \
  >>"$T/send.log" 2>&1 || fail "TLS receiver stopped serving"
stop_receiver

verify_root "$ROOT"
echo "PASS limits_receiver"
