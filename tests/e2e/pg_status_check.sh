#!/usr/bin/env bash
# `walferry status` on a real PostgreSQL 15 primary archiving with walferry
# push, and `status --check` for monitoring: healthy -> ARCHIVE OK; the
# receiver stopped under a pgbench load -> the backlog grows, --check fires
# (exit 1, backlog over the threshold, the failing segment with push's own
# reason), the human form says FAILING; the receiver back -> the backlog
# drains and --check clears. status --prometheus shows the same figures. The receiver side shows size, last write, holes.
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
as_pg "$PGBIN/pgbench" -q -i -s 1 -h 127.0.0.1 -p "$PORT" -U postgres postgres >"$T/pgbench.log" 2>&1 || fail "pgbench -i"
switch() { psql_at "$PORT" "insert into pgbench_history(tid,bid,aid,delta,mtime) values (1,1,1,0,now()); select pg_switch_wal()" >/dev/null; }
ready() { ls "$P/pg_wal/archive_status" | grep -c '\.ready$' || true; }
wait_ready() {  # wait_ready OP N: until the .ready count OP N (60 s)
  local i
  for i in $(seq 1 300); do [ "$(ready)" -"$1" "$2" ] && return 0; sleep 0.2; done
  fail "timed out: .ready count $(ready), wanted -$1 $2"
}
switch
wait_ready eq 0

STATUS=(as_pg "$WF" status --pgdata "$P" -U postgres)
"${STATUS[@]}" >"$T/healthy.txt" || fail "status"
for re in '^  archiving: +ok \(archive_mode on, walferry push' '^  backlog: +0 segment\(s\) waiting \(0 B\)' \
          '^  last 5 min: +WAL written [0-9.]+ segments/min, archived [0-9.]+ segments/min' \
          '^  last archived: +[0-9A-F]{24}, [0-9]+ s ago' '^  agent: +not running \(no agent socket at '; do
  grep -qE "$re" "$T/healthy.txt" || { cat "$T/healthy.txt" >&2; fail "healthy status lacks /$re/"; }
done
"${STATUS[@]}" --check >"$T/check-ok.txt" || { cat "$T/check-ok.txt" >&2; fail "--check of a healthy primary failed"; }
grep -qE '^ARCHIVE OK - backlog 0 segments' "$T/check-ok.txt" || { cat "$T/check-ok.txt" >&2; fail "no ARCHIVE OK line"; }

# The receiver stops while pgbench writes.
kill "$RECEIVER_PID"
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/"$RPORT") 2>/dev/null || break; sleep 0.1; done
as_pg "$PGBIN/pgbench" -n -T 5 -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >>"$T/pgbench.log" 2>&1 &
LOAD=$!
for _ in 1 2 3 4; do switch; sleep 0.3; done
wait "$LOAD" || fail "pgbench under the outage"
wait_ready ge 4
rc=0; "${STATUS[@]}" --check --max-backlog 2 >"$T/check-bad.txt" || rc=$?
[ "$rc" = 1 ] || { cat "$T/check-bad.txt" >&2; fail "--check with the receiver down exited $rc"; }
grep -qE '^ARCHIVE CRITICAL - backlog [0-9]+ segments \([0-9.]+ MiB\) > 2' "$T/check-bad.txt" \
  || { cat "$T/check-bad.txt" >&2; fail "--check does not name the backlog"; }
grep -qE "archiving [0-9A-F]{24} failed [0-9]+ s ago: push [0-9A-F]{24}: .*127.0.0.1:$RPORT" "$T/check-bad.txt" \
  || { cat "$T/check-bad.txt" >&2; fail "--check does not give push's reason"; }
sleep 1.2
rc=0; "${STATUS[@]}" --check --max-backlog -1 --max-oldest-age 1 >"$T/check-age.txt" || rc=$?
[ "$rc" = 1 ] && grep -qE 'oldest \.ready [0-9]+ s old > 1 s' "$T/check-age.txt" \
  || { cat "$T/check-age.txt" >&2; fail "--max-oldest-age did not fire"; }
"${STATUS[@]}" >"$T/failing.txt" || fail "status while failing"
grep -qE '^  archiving: +FAILING' "$T/failing.txt" && grep -qE '^  last failure: +[0-9A-F]{24}, .*cannot reach' "$T/failing.txt" \
  || { cat "$T/failing.txt" >&2; fail "human status does not show the failure and its reason"; }
"${STATUS[@]}" --json >"$T/failing.json" || fail "status --json"
python3 - "$T/failing.json" <<'PY' || fail "status --json while failing: $(cat "$T/failing.json")"
import json, sys
s = json.load(open(sys.argv[1]))["server"]
b = s["backlog"]
assert b["segments"] >= 4 and b["bytes"] >= b["segments"] * 16 * 1024 * 1024 - 1, b
assert b["oldest_age_seconds"] > 0, b
assert s["archiver"]["failing"] is True and "cannot reach" in s["archiver"]["last_failure_reason"], s["archiver"]
assert s["agent"]["running"] is False, s
PY
"${STATUS[@]}" --prometheus >"$T/failing.prom" || fail "status --prometheus"
grep -qE '^walferry_archive_backlog_segments ([4-9]|[1-9][0-9]+)$' "$T/failing.prom" \
  && grep -qE '^walferry_archive_failing 1$' "$T/failing.prom" && grep -qE '^walferry_agent_up 0$' "$T/failing.prom" \
  || { cat "$T/failing.prom" >&2; fail "status --prometheus does not show the stall"; }

# The receiver is back: the archiver drains the backlog, --check clears.
start_receiver
switch  # wakes the archiver (it waits up to 60 s after failures)
wait_ready eq 0
"${STATUS[@]}" --check --max-backlog 2 >"$T/check-back.txt" \
  || { cat "$T/check-back.txt" >&2; fail "--check did not clear after the receiver came back"; }
grep -q '^ARCHIVE OK' "$T/check-back.txt" || fail "no ARCHIVE OK after recovery"
"${STATUS[@]}" --prometheus >"$T/back.prom" || fail "status --prometheus"
grep -qE '^walferry_archive_backlog_segments 0$' "$T/back.prom" && grep -qE '^walferry_archive_failing 0$' "$T/back.prom" \
  || { cat "$T/back.prom" >&2; fail "status --prometheus does not show the recovery"; }

# The receiver's side.
as_pg "$WF" status --root "$ROOT" >"$T/receiver.txt" || fail "status --root"
for re in '^archive cluster main' '^  newest segment: [0-9A-F]{24} \([0-9]+ WAL file' \
          '^  size on disk: +[0-9.]+ (KiB|MiB), last write [0-9]+ s ago' '^  holes: +none'; do
  grep -qE "$re" "$T/receiver.txt" || { cat "$T/receiver.txt" >&2; fail "receiver status lacks /$re/"; }
done
pg_stop "$P"
{ echo "--- healthy:"; cat "$T/healthy.txt" "$T/check-ok.txt"; echo "--- receiver stopped under load:";
  cat "$T/failing.txt" "$T/check-bad.txt"; echo "--- receiver back:"; cat "$T/check-back.txt" "$T/receiver.txt"; } >&2
note "pg_status_check: ok"
