#!/usr/bin/env bash
# `walferry check` on a real PostgreSQL 15 primary archiving to a real TLS
# receiver: a good configuration passes every check and the switched segment
# is read back from the receiver; then each breakage a user meets gets its ✗
# line, a hint and exit 1: certificate near expiry (threshold), receiver
# stopped (unreachable, segment not archived), archive_command not walferry's,
# a changed setting waiting for a restart, archive_mode off after it.
. "$(dirname "$0")/lib/common.sh"
ensure_pg_user
"$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
mkdir -p "$T/tls-main"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
ROOT="$T/archive"
RPORT=$(free_port); PORT=$(free_port)
share_scratch
start_receiver() {
  as_pg "$WF" serve --root "$ROOT" --listen "127.0.0.1:$RPORT" --tls-dir "$T/tls" >>"$T/serve.log" 2>&1 &
  WF_PIDS+=("$!")
  wait_port "$RPORT"
  RECEIVER_PID=$(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | cut -d= -f2 | head -n 1)
  WF_PIDS+=("$RECEIVER_PID")
}
start_receiver
P=$(pg_init prim)
as_pg "$WF" setup primary --pgdata "$P" --standby-address 127.0.0.1 --replication-user postgres \
  --auth-method trust --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --apply >"$T/setup.log" 2>&1 \
  || { cat "$T/setup.log" >&2; fail "setup primary --apply"; }
pg_start "$P" "$PORT"

# check OUT [args]: runs walferry check as the PostgreSQL user; RC gets its exit code.
check() {
  local out=$1; shift
  RC=0
  as_pg "$WF" check --pgdata "$P" -U postgres --timeout 20 "$@" >"$out" 2>&1 || RC=$?
}
expect_line() {  # expect_line FILE MARK REGEX
  grep -qE "^$2 $3" "$1" || { cat "$1" >&2; fail "no '$2 $3' line"; }
}

check "$T/good.txt"
[ "$RC" = 0 ] || { cat "$T/good.txt" >&2; fail "check of a good configuration exited $RC"; }
for re in "PostgreSQL 15 primary" "wal_level = replica" "archive_mode = on" "archive_command = '.*push %p" \
          "max_wal_senders = 10" "receiver 127.0.0.1:$RPORT reachable" "client certificate client-main.crt valid for [0-9]+ more days" \
          "WAL switch: [0-9A-F]{24} durable in the archive after [0-9.]+ s \(16.0 MiB read back"; do
  expect_line "$T/good.txt" ✓ "$re"
done
grep -q '✗' "$T/good.txt" && { cat "$T/good.txt" >&2; fail "a good configuration has a ✗ line"; }
SEG=$(grep -oE 'WAL switch: [0-9A-F]{24}' "$T/good.txt" | cut -d' ' -f3)
ls "$ROOT"/main/wal/"$SEG"* >/dev/null 2>&1 || fail "the switched segment $SEG is not in the receiver's archive"

check "$T/good.json" --json
[ "$RC" = 0 ] || fail "check --json exited $RC"
python3 - "$T/good.json" <<'PY' || fail "check --json: $(cat "$T/good.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is True, j
ids = {c["check"]: c["ok"] for c in j["checks"]}
for k in ("server", "wal_level", "archive_mode", "archiving", "receiver", "certificate", "wal_switch"):
    assert ids.get(k) is True, (k, j)
PY

# A certificate that expires before the threshold.
check "$T/cert.txt" --cert-min-days 100000
[ "$RC" = 1 ] || fail "certificate threshold: exit $RC"
expect_line "$T/cert.txt" ✗ "client certificate client-main.crt expires in [0-9]+ days"

# The receiver stopped: unreachable, and the switched segment is never archived.
kill "$RECEIVER_PID"
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$RPORT") 2>/dev/null || break; sleep 0.1; done
check "$T/down.txt"
[ "$RC" = 1 ] || { cat "$T/down.txt" >&2; fail "receiver stopped: exit $RC"; }
expect_line "$T/down.txt" ✗ "receiver: cannot reach 127.0.0.1:$RPORT"
grep -q '→ is walferry serve running there' "$T/down.txt" || { cat "$T/down.txt" >&2; fail "no hint for an unreachable receiver"; }
expect_line "$T/down.txt" ✗ "archive_command failed for [0-9A-F]{24}"
start_receiver

# archive_command that is not walferry's.
psql_at "$PORT" "alter system set archive_command = 'cp %p /nonexistent/%f'" >/dev/null
psql_at "$PORT" "select pg_reload_conf()" >/dev/null
sleep 0.5
check "$T/cmd.txt" --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main"
[ "$RC" = 1 ] || fail "foreign archive_command: exit $RC"
expect_line "$T/cmd.txt" ✗ "archive_command = 'cp %p /nonexistent/%f' is not walferry push %p"
psql_at "$PORT" "alter system reset archive_command" >/dev/null
as_pg "$WF" setup primary --pgdata "$P" --standby-address 127.0.0.1 --replication-user postgres \
  --auth-method trust --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --apply >"$T/setup2.log" 2>&1 || fail "setup again"

# archive_mode = off, not yet applied (pending restart), then applied.
psql_at "$PORT" "alter system set archive_mode = off" >/dev/null
psql_at "$PORT" "select pg_reload_conf()" >/dev/null
sleep 0.5
check "$T/pending.txt"
[ "$RC" = 1 ] || fail "pending restart: exit $RC"
expect_line "$T/pending.txt" ✗ "changed settings wait for a restart: archive_mode"
as_pg "$PGBIN/pg_ctl" -D "$P" -m fast -w restart >/dev/null || fail "restart"
check "$T/off.txt"
[ "$RC" = 1 ] || fail "archive_mode off: exit $RC"
expect_line "$T/off.txt" ✗ "archive_mode = off \(nothing is archived\)"
grep -q 'WAL switch' "$T/off.txt" && fail "a WAL switch was forced with archive_mode off"
pg_stop "$P"
{ echo "--- a good configuration:"; cat "$T/good.txt"; echo "--- the receiver stopped:"; cat "$T/down.txt"; } >&2
note "pg_check: ok"
