#!/usr/bin/env bash
# Hostile clients against a receiver: no certificate, TLS 1.2, a foreign CA, a
# certificate for another cluster, path-escape names, garbage bytes, oversized
# and out-of-order frames. All refused; nothing is written under ROOT except
# .incoming bookkeeping; the receiver keeps serving honest clients throughout.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
tls_setup
HOSTILE="$SRC_DIR/tests/tools/hostile_client.py"

BASE="$T/r"
ROOT="$BASE/root"
mkdir -p "$BASE" "$T/outside"
SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/ok.bin" 300000 3
TPORT=$(free_port)
IPORT=$(free_port)
start_receiver "$ROOT" "$TPORT" --tls-dir "$T/tls" --store raw
TLS_PID=$RECV_PID
# An insecure receiver on the same root: the protocol checks without TLS in the way.
start_receiver "$ROOT" "$IPORT" --insecure-loopback --store raw
INS_PID=$RECV_PID

# Only these may ever appear under a final name.
expect_file main ok.bin "$SRC/ok.bin"
expect_file other ok.bin "$SRC/ok.bin"
expect_file main ok2.bin "$SRC/ok.bin"
expect_file main ok3.bin "$SRC/ok.bin"

alive() {  # the receivers still serve honest clients
  "$WF" send "$SRC/ok.bin" --name ok.bin --to "127.0.0.1:$TPORT" --tls-dir "$T/tls-main" >>"$T/send.log" 2>&1 \
    || fail "TLS receiver stopped serving after: $1"
  "$WF" send "$SRC/ok.bin" --name ok.bin --to "127.0.0.1:$IPORT" --insecure-loopback --cluster main >>"$T/send.log" 2>&1 \
    || fail "insecure receiver stopped serving after: $1"
  kill -0 "$TLS_PID" && kill -0 "$INS_PID" || fail "a receiver died after: $1"
}

# Nothing under BASE but ROOT; under ROOT only cluster dirs with wal/files,
# .incoming, and bookkeeping files; under final names only expected content.
check_tree() {
  local label=$1 extra
  extra=$(find "$BASE" -mindepth 1 -maxdepth 1 ! -name root)
  [ -z "$extra" ] || fail "$label: written outside the root: $extra"
  [ -z "$(ls -A "$T/outside")" ] || fail "$label: written through a symlink: $(ls -A "$T/outside")"
  extra=$(find "$ROOT" -mindepth 1 ! -path "$ROOT/.incoming" ! -path "$ROOT/.incoming/*" \
            ! -path "$ROOT/main" ! -path "$ROOT/other" ! -path "$ROOT/evil-link" \
            ! -regex "$ROOT/\(main\|other\)/\(wal\|files\)" \
            ! -regex "$ROOT/\(main\|other\)/\(wal\|files\)/[^/]*" \
            ! -regex "$ROOT/\(main\|other\)/[^/]*" )
  [ -z "$extra" ] || fail "$label: unexpected paths under the root: $extra"
  for f in "$ROOT"/main/* "$ROOT"/other/*; do
    [ -e "$f" ] || continue
    [ -d "$f" ] || note "$label: bookkeeping file $(basename "$f")"
  done
  verify_root "$ROOT"
}

alive "start"
check_tree "honest sends"

# --- TLS refusals: the sender exits non-zero with a one-line certificate error.
rc=0; out=$("$WF" send "$SRC/ok.bin" --name ok2.bin --to "127.0.0.1:$TPORT" --tls-dir "$T/tls-foreign" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "client trusting a foreign CA was accepted"
[ "$(echo "$out" | wc -l)" -le 2 ] || fail "error is not one line: $out"
grep -qi "certificate" <<<"$out" || fail "foreign CA: error does not mention the certificate: $out"
note "foreign CA: exit $rc: $out"

mkdir -p "$T/tls-mixed"
cp "$T/tls/ca.crt" "$T/tls-mixed/"
cp "$T/tls-foreign/client-main.crt" "$T/tls-foreign/client-main.key" "$T/tls-mixed/"
rc=0; out=$("$WF" send "$SRC/ok.bin" --name ok2.bin --to "127.0.0.1:$TPORT" --tls-dir "$T/tls-mixed" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "client certificate from a foreign CA was accepted"
grep -qi "certificate" <<<"$out" || fail "foreign client cert: error does not mention the certificate: $out"
note "foreign client certificate: exit $rc: $out"

rc=0; out=$("$WF" send "$SRC/ok.bin" --name ok2.bin --to "127.0.0.1:$TPORT" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "send without --tls-dir or --insecure-loopback succeeded"
note "no TLS dir: exit $rc: $out"

rc=0; out=$("$WF" send "$SRC/ok.bin" --name ok2.bin --to "127.0.0.1:$TPORT" --insecure-loopback --cluster main --retries 1 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "plain TCP to the TLS receiver succeeded"
note "plain client on the TLS port: exit $rc: $(echo "$out" | tail -1)"

for c in no-cert tls12; do
  python3 "$HOSTILE" --port "$TPORT" --tls-dir "$T/tls" --cluster main "$c" >>"$T/hostile.log" 2>&1 \
    || fail "TLS receiver accepted a '$c' client (see hostile.log)"
done
python3 "$HOSTILE" --port "$TPORT" garbage 4096 >>"$T/hostile.log" 2>&1 \
  || fail "TLS receiver did not refuse plain garbage"
alive "TLS refusals"
check_tree "TLS refusals"

# --- A certificate for cluster "other" presented as if it were "main": the
# receiver goes by the certificate, so main/ never gets it.
mkdir -p "$T/tls-posing"
cp "$T/tls/ca.crt" "$T/tls-posing/"
cp "$T/tls/client-other.crt" "$T/tls-posing/client-main.crt"
cp "$T/tls/client-other.key" "$T/tls-posing/client-main.key"
make_file "$SRC/posing.bin" 5000 9
expect_file other posing.bin "$SRC/posing.bin"
rc=0
"$WF" send "$SRC/posing.bin" --name posing.bin --to "127.0.0.1:$TPORT" --tls-dir "$T/tls-posing" --cluster main \
  >>"$T/send.log" 2>&1 || rc=$?
[ -z "$(final_path "$ROOT" main posing.bin)" ] || fail "a certificate for 'other' wrote into main/"
[ "$rc" -ne 0 ] || [ -n "$(final_path "$ROOT" other posing.bin)" ] || fail "posing send exited 0 but nothing stored"
note "cert for 'other' posing as main: exit $rc, stored in other/: $([ -n "$(final_path "$ROOT" other posing.bin)" ] && echo yes || echo no)"
check_tree "cluster posing"

# --- Path-escape and control-character names, through the CLI and raw frames.
hex() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
long=$(printf 'n%.0s' $(seq 1 256))
for name in "../x" "a/b" ".." "." "/etc/passwd" "../../../../tmp/x" ".incoming" "$long" \
            "$(printf 'a\nb')" "$(printf 'a\tb')" "$(printf '\x01x')" "$(printf 'x\x7f')" "$(printf 'a\rb')"; do
  rc=0
  "$WF" send "$SRC/ok.bin" --name "$name" --to "127.0.0.1:$TPORT" --tls-dir "$T/tls-main" >>"$T/send.log" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] || fail "name $(printf '%q' "$name") accepted by send"
  python3 "$HOSTILE" --port "$IPORT" name "$(hex "$name")" >>"$T/hostile.log" 2>&1 \
    || fail "receiver accepted an OPEN for name $(printf '%q' "$name") (see hostile.log)"
  python3 "$HOSTILE" --port "$TPORT" --tls-dir "$T/tls" --cluster main name "$(hex "$name")" >>"$T/hostile.log" 2>&1 \
    || fail "TLS receiver accepted an OPEN for name $(printf '%q' "$name")"
done
for hexname in 610062 2e2e2f78 "$(hex "$long")"; do  # a\0b, ../x, 256 bytes
  python3 "$HOSTILE" --port "$IPORT" name "$hexname" >>"$T/hostile.log" 2>&1 \
    || fail "receiver accepted an OPEN for hex name $hexname"
done
# Clusters claimed on an insecure connection are checked the same way, and a
# cluster directory that is a symlink out of the root is never followed.
ln -s "$T/outside" "$ROOT/evil-link"
for c in "../evil" "a/b" ".." "evil-link" "$(printf 'a\nb')"; do
  python3 "$HOSTILE" --port "$IPORT" cluster "$(hex "$c")" >>"$T/hostile.log" 2>&1 \
    || fail "receiver accepted cluster $(printf '%q' "$c") (see hostile.log)"
done
alive "hostile names"
check_tree "hostile names"

# --- Garbage, oversized and out-of-order frames, plain and inside TLS.
for c in "garbage 65536" "garbage 7" oversized unknown-type chunk-first commit-first; do
  # shellcheck disable=SC2086
  python3 "$HOSTILE" --port "$IPORT" $c >>"$T/hostile.log" 2>&1 || fail "insecure receiver: '$c' not refused"
  [ "$c" = "garbage 7" ] && continue  # over TLS we cannot half-close; the I/O timeout ends it
  # shellcheck disable=SC2086
  python3 "$HOSTILE" --port "$TPORT" --tls-dir "$T/tls" --cluster main $c >>"$T/hostile.log" 2>&1 \
    || fail "TLS receiver: '$c' not refused"
done
# Many at once.
pids=()
for i in $(seq 1 16); do
  python3 "$HOSTILE" --port "$IPORT" garbage $((i * 1000)) >>"$T/hostile.log" 2>&1 & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a parallel garbage client was not refused"; done
alive "garbage and oversized frames"
expect_file main ok3.bin "$SRC/ok.bin"
"$WF" send "$SRC/ok.bin" --name ok3.bin --to "127.0.0.1:$TPORT" --tls-dir "$T/tls-main" >>"$T/send.log" 2>&1 \
  || fail "honest send after the hostile ones failed"
assert_stored "$ROOT" main ok3.bin "$SRC/ok.bin"
check_tree "the end"
stop_receiver
kill "$TLS_PID" 2>/dev/null || true
echo PASS
