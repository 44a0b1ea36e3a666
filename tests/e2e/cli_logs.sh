#!/usr/bin/env bash
# The receiver's log as an operator reads it: one line per event with a UTC
# timestamp and a level; a transfer's line carries cluster, name, bytes, wire
# bytes, duration and outcome; a refusal is a WARN. Under systemd
# (JOURNAL_STREAM set) no timestamp but a syslog priority prefix. --log-level
# warn keeps only the failures; a bad level is a usage error.
. "$(dirname "$0")/lib/common.sh"
head -c 3000000 /dev/urandom >"$T/data.bin"

# serve_once LOG [serve args]: a receiver; one file sent twice, one refused push.
serve_once() {
  local log=$1; shift
  local port pid
  port=$(free_port)
  "$WF" serve --root "$T/archive-$(basename "$log")" --listen "127.0.0.1:$port" --insecure-loopback "$@" \
    >/dev/null 2>"$log" &
  pid=$!
  WF_PIDS+=("$pid")
  wait_port "$port"
  local to=(--to "127.0.0.1:$port" --insecure-loopback --cluster c1)
  "$WF" send "$T/data.bin" --name data.bin "${to[@]}" || fail "send"
  "$WF" send "$T/data.bin" --name data.bin "${to[@]}" || fail "send again"
  cp "$T/data.bin" "$T/not-a-wal-name"
  "$WF" push "$T/not-a-wal-name" "${to[@]}" 2>/dev/null && fail "push of a non-WAL name succeeded"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

serve_once "$T/plain.log"
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
grep -qE "^$TS INFO serve: listening on 127.0.0.1 port [0-9]+" "$T/plain.log" || { cat "$T/plain.log" >&2; fail "no timestamped start line"; }
grep -qE "^$TS INFO serve: .* cluster=c1 name=data.bin placed bytes=3000000 wire=[0-9]+ chunks=[0-9]+ ms=[0-9]+" "$T/plain.log" \
  || { cat "$T/plain.log" >&2; fail "no transfer line with cluster, name, bytes, wire bytes, duration, outcome"; }
grep -qE "^$TS INFO serve: .* cluster=c1 name=data.bin identical bytes=3000000 " "$T/plain.log" \
  || { cat "$T/plain.log" >&2; fail "no line for the identical second transfer"; }
grep -qE "^$TS WARN serve: .* cluster=c1 .*name=not-a-wal-name.* error=" "$T/plain.log" \
  || { cat "$T/plain.log" >&2; fail "the refused push is not a WARN line"; }
grep -qE "^$TS INFO serve: stopped after 2 transfers" "$T/plain.log" || { cat "$T/plain.log" >&2; fail "no stop line"; }
bad=$(grep -vcE "^$TS (DEBUG|INFO|WARN|ERROR) " "$T/plain.log" || true)
[ "$bad" = 0 ] || { cat "$T/plain.log" >&2; fail "$bad line(s) without timestamp and level"; }

JOURNAL_STREAM=8:12345 serve_once "$T/journal.log"
grep -qE '^<6>INFO serve: .* name=data.bin placed bytes=3000000 ' "$T/journal.log" \
  || { cat "$T/journal.log" >&2; fail "journal mode: no '<6>INFO' transfer line"; }
grep -qE '^<4>WARN serve: ' "$T/journal.log" || { cat "$T/journal.log" >&2; fail "journal mode: no '<4>WARN' line"; }
grep -qE "$TS" "$T/journal.log" && { cat "$T/journal.log" >&2; fail "journal mode printed timestamps"; }

serve_once "$T/warn.log" --log-level warn
grep -q 'INFO' "$T/warn.log" && { cat "$T/warn.log" >&2; fail "--log-level warn printed INFO lines"; }
grep -qE "^$TS WARN serve: .*error=" "$T/warn.log" || { cat "$T/warn.log" >&2; fail "--log-level warn hid the failure"; }

rc=0; "$WF" serve --root "$T/x" --listen 127.0.0.1:1 --insecure-loopback --log-level loud 2>"$T/bad.err" || rc=$?
[ "$rc" = 2 ] || fail "a bad --log-level exited $rc"
grep -q 'log-level must be' "$T/bad.err" || fail "no message for a bad --log-level"
note "cli_logs: ok"
