#!/usr/bin/env bash
# What a user sees on a terminal: `walferry send` and `walferry basebackup`
# draw a pv-like progress line (bytes, rate, bar, percentage, ETA) under a real
# pseudo-terminal (script(1)); nothing on a non-terminal unless --progress;
# --no-progress silences it on a terminal. basebackup's total is the server's
# own size estimate (a real PostgreSQL 15).
. "$(dirname "$0")/lib/common.sh"
command -v script >/dev/null || skip "script(1) (util-linux) not installed"

RPORT=$(free_port)
"$WF" serve --root "$T/archive" --listen "127.0.0.1:$RPORT" --insecure-loopback >"$T/serve.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$RPORT"
TO=(--to "127.0.0.1:$RPORT" --insecure-loopback --cluster c)
head -c 64000000 /dev/urandom >"$T/data.bin"

# on_tty OUTFILE COMMAND...: runs COMMAND with its stdio on a new pseudo-terminal;
# OUTFILE gets what the terminal showed, each '\r' redraw on its own line.
on_tty() {
  local out=$1; shift
  local cmd="" a
  for a in "$@"; do cmd+=" $(printf '%q' "$a")"; done
  script -qfec "$cmd" "$out.raw" </dev/null >/dev/null || { cat "$out.raw" >&2; fail "on a terminal:$cmd failed"; }
  tr '\r' '\n' <"$out.raw" >"$out"
}

# A file of known size: bar, percentage and ETA, then a final summary line.
on_tty "$T/send.tty" "$WF" send "$T/data.bin" --name one "${TO[@]}"
grep -qE '^[0-9.]+ (KiB|MiB) / 61\.0 MiB \[[=>]* *\] +[0-9]+%  [0-9.]+ [KMG]iB/s  ETA [0-9]+:[0-9]{2}' "$T/send.tty" \
  || { cat "$T/send.tty" >&2; fail "send: no progress line with size, bar, percentage and ETA on a terminal"; }
grep -qE '^61\.0 MiB in [0-9]+:[0-9]{2} \([0-9.]+ MiB/s\)' "$T/send.tty" \
  || { cat "$T/send.tty" >&2; fail "send: no final summary line"; }

# A pipe of unknown size: bytes, rate and elapsed time.
on_tty "$T/pipe.tty" bash -c "cat $(printf '%q' "$T/data.bin") | $(printf '%q' "$WF") send - --name two ${TO[*]}"
grep -qE '^[0-9.]+ (KiB|MiB)  [0-9.]+ [KMG]iB/s  [0-9]+:[0-9]{2}' "$T/pipe.tty" \
  || { cat "$T/pipe.tty" >&2; fail "send -: no progress line for a pipe"; }

# --no-progress on a terminal, and no flag off a terminal: no progress at all.
on_tty "$T/quiet.tty" "$WF" send "$T/data.bin" --name three --no-progress "${TO[@]}"
grep -q 'MiB' "$T/quiet.tty" && { cat "$T/quiet.tty" >&2; fail "--no-progress still drew progress"; }
"$WF" send "$T/data.bin" --name four "${TO[@]}" 2>"$T/notty.err" || fail "send off a terminal"
[ -s "$T/notty.err" ] && { cat "$T/notty.err" >&2; fail "send wrote to a non-terminal stderr without --progress"; }
"$WF" send "$T/data.bin" --name five --progress "${TO[@]}" 2>"$T/forced.err" || fail "send --progress"
grep -q '61.0 MiB in' "$T/forced.err" || { cat "$T/forced.err" >&2; fail "--progress off a terminal drew nothing"; }

# basebackup: the total is the server's estimate (sum of pg_tablespace_size).
ensure_pg_user
P=$(pg_init prim)
PORT=$(free_port)
pg_start "$P" "$PORT"
as_pg "$PGBIN/pgbench" -q -i -s 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >"$T/pgbench.log" 2>&1 || fail "pgbench -i"
EST=$(psql_at "$PORT" "select sum(pg_tablespace_size(oid)) + 16777216 from pg_tablespace")
on_tty "$T/bb.tty" "$WF" basebackup --name base.tar "${TO[@]}" -h 127.0.0.1 -p "$PORT" -U postgres -c fast
EST_MIB=$(awk -v n="$EST" 'BEGIN { printf "%.1f", n / 1048576 }')
grep -qE "^[0-9.]+ (KiB|MiB) / $EST_MIB MiB \[[=>]* *\] +[0-9]+%  [0-9.]+ [KMG]iB/s  ETA ([0-9]+:[0-9]{2}|--:--)" "$T/bb.tty" \
  || { cat "$T/bb.tty" >&2; fail "basebackup: no progress line against the server's estimate ($EST_MIB MiB)"; }
grep -q 'base backup base.tar is durable on the receiver' "$T/bb.tty" || fail "basebackup: no final message"
ls "$T"/archive/c/files/base.tar* >/dev/null || fail "base backup not stored"
"$WF" basebackup --name base2.tar "${TO[@]}" -h 127.0.0.1 -p "$PORT" -U postgres -c fast 2>"$T/bb.err" \
  || fail "basebackup off a terminal"
grep -q 'MiB' "$T/bb.err" && { cat "$T/bb.err" >&2; fail "basebackup drew progress on a non-terminal"; }
pg_stop "$P"
kill "${WF_PIDS[0]}"; wait "${WF_PIDS[0]}" 2>/dev/null || true
note "cli_progress: ok ($(grep -c MiB "$T/send.tty") progress redraws for a 61 MiB send)"
