#!/usr/bin/env bash
# A base backup through a pipe is stored only when complete (issue 8, points
# 3 and 4), with real PostgreSQL 15 and a real receiver over TLS:
#  - pg_basebackup -Ft -D - | walferry send - --name full.tar: stored, and the
#    stored tar holds its backup_manifest;
#  - the same stream cut with head -c, and pg_basebackup killed with -9 in
#    the middle: send exits 8 (refused), nothing under the name;
#  - walferry basebackup whose pg_basebackup fails midway (exit 1), and one
#    whose pg_basebackup lies (cut stream, exit 0): non-zero, nothing stored;
#  - a non-tar pipe is stored as before; --expect tar refuses it.
. "$(dirname "$0")/lib/common.sh"
"$WF" serve --help >/dev/null 2>&1 || skip "serve not built"
[ -x "$PGBIN/pg_basebackup" ] || skip "pg_basebackup not installed"

P=$(pg_init prim)
PORT=$(free_port)
pg_start "$P" "$PORT"
"$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
ROOT="$T/root"
RPORT=$(free_port)
"$WF" serve --root "$ROOT" --listen "127.0.0.1:$RPORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$RPORT"
TO=(--to "127.0.0.1:$RPORT" --tls-dir "$T/tls")
BB=("$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -Ft -D - -X fetch -c fast)
FILES="$ROOT/main/files"

nothing_stored() {
  ! ls "$FILES/$1"* >/dev/null 2>&1 || fail "$1 was stored: $(ls -l "$FILES/$1"*)"
}

# --- complete
"${BB[@]}" 2>"$T/bb-full.err" | "$WF" send - --name full.tar "${TO[@]}" 2>"$T/send-full.err" \
  || fail "complete backup not stored: $(cat "$T/bb-full.err" "$T/send-full.err")"
zstd -qdc "$FILES/full.tar.zst" >"$T/full.tar"
tar -tf "$T/full.tar" >"$T/full.list" || fail "stored full.tar is not a tar"
grep -qx backup_manifest "$T/full.list" || fail "stored full.tar has no backup_manifest"
SIZE=$(stat -c %s "$T/full.tar")
note "complete backup stored: $SIZE bytes, $(wc -l <"$T/full.list") members"

# --- cut with head -c (at a few points, one of them on a block boundary)
for cut in 1000 $((512 * 2000)) $((SIZE / 2)) $((SIZE - 1024)) $((SIZE - 700)); do
  rc=0
  "${BB[@]}" 2>/dev/null | head -c "$cut" | "$WF" send - --name "cut-$cut.tar" "${TO[@]}" 2>"$T/send-cut.err" \
    || rc=$?
  [ "$rc" -eq 8 ] || fail "stream cut at $cut: send exit $rc, want 8: $(cat "$T/send-cut.err")"
  [ "$(wc -l <"$T/send-cut.err")" -eq 1 ] || fail "cut at $cut: not a one-line error: $(cat "$T/send-cut.err")"
  nothing_stored "cut-$cut.tar"
done
note "cut streams refused: $(cat "$T/send-cut.err")"

# --- pg_basebackup killed with -9 mid-stream (rate-limited so that it is mid-stream)
mkfifo "$T/fifo"
"$WF" send - --name killed.tar "${TO[@]}" <"$T/fifo" 2>"$T/send-killed.err" &
SEND_PID=$!
"$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -Ft -D - -X fetch -c fast -r 1M >"$T/fifo" 2>/dev/null &
BB_PID=$!
for _ in $(seq 1 100); do
  [ -n "$(ls -A "$ROOT/.incoming" 2>/dev/null)" ] && break
  sleep 0.1
done
sleep 1
kill -9 "$BB_PID"
wait "$BB_PID" 2>/dev/null || true
rc=0; wait "$SEND_PID" || rc=$?
[ "$rc" -eq 8 ] || fail "pg_basebackup killed: send exit $rc, want 8: $(cat "$T/send-killed.err")"
nothing_stored killed.tar
note "killed pg_basebackup refused: $(cat "$T/send-killed.err")"

# --- walferry basebackup with a failing and with a lying pg_basebackup
mkdir -p "$T/fail-bin" "$T/lie-bin"
cat >"$T/fail-bin/pg_basebackup" <<SH
#!/bin/sh
"$PGBIN/pg_basebackup" "\$@" | head -c 3000000
exit 1
SH
cat >"$T/lie-bin/pg_basebackup" <<SH
#!/bin/sh
"$PGBIN/pg_basebackup" "\$@" | head -c 3000000
exit 0
SH
chmod +x "$T/fail-bin/pg_basebackup" "$T/lie-bin/pg_basebackup"
for kind in fail lie; do
  rc=0
  "$WF" basebackup "${TO[@]}" --name "bb-$kind.tar" --pgbin "$T/$kind-bin" -h 127.0.0.1 -p "$PORT" -U postgres \
    -c fast >"$T/bb-$kind.log" 2>&1 || rc=$?
  [ "$rc" -ne 0 ] && [ "$rc" -lt 125 ] || fail "basebackup with a $kind pg_basebackup: exit $rc: $(cat "$T/bb-$kind.log")"
  nothing_stored "bb-$kind.tar"
  note "basebackup, $kind pg_basebackup: exit $rc: $(tail -1 "$T/bb-$kind.log")"
done
# ...and with the real one it works.
"$WF" basebackup "${TO[@]}" --name bb-ok.tar -h 127.0.0.1 -p "$PORT" -U postgres -c fast >"$T/bb-ok.log" 2>&1 \
  || fail "basebackup: $(cat "$T/bb-ok.log")"
[ -f "$FILES/bb-ok.tar.zst" ] || fail "bb-ok.tar not stored"

# --- non-tar pipes keep today's behaviour; --expect tar refuses them
head -c 100000 /dev/urandom >"$T/random.bin"
"$WF" send - --name random.bin "${TO[@]}" <"$T/random.bin" 2>/dev/null || fail "non-tar pipe refused"
zstd -qdc "$FILES/random.bin.zst" | cmp - "$T/random.bin" || fail "non-tar pipe differs"
rc=0; "$WF" send - --name random.tar --expect tar "${TO[@]}" <"$T/random.bin" 2>/dev/null || rc=$?
[ "$rc" -eq 8 ] || fail "--expect tar accepted random bytes (exit $rc)"
nothing_stored random.tar
# --expect any stores a cut tar (the user said so).
"${BB[@]}" 2>/dev/null | head -c 100000 | "$WF" send - --name any.tar --expect any "${TO[@]}" 2>"$T/any.err" \
  || [ "${PIPESTATUS[2]}" -eq 0 ] || fail "--expect any refused a stream: $(cat "$T/any.err")"
[ -f "$FILES/any.tar.zst" ] || fail "--expect any: any.tar not stored"
echo "PASS pg_basebackup_pipe"
