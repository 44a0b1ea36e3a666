#!/usr/bin/env bash
# The hot-standby guide as walferry commands, on two real PostgreSQL 15
# clusters on loopback, run as the unprivileged test user:
#   walferry tls init                -> trust for the receiver (instead of ssh keys)
#   walferry serve                   -> the receiver on the "standby host"
#   walferry setup primary --apply   -> wal_level/archive_command/pg_hba.conf
#   walferry basebackup              -> pg_basebackup -Ft shipped to the receiver
#   walferry restore-base            -> standby data directory + configuration
#   standby replays archived WAL through `walferry get`, then streams;
#   pg_stat_replication says streaming; pgbench rows reach the standby;
#   walferry status --json reports it; walferry promote; the standby takes writes.
. "$(dirname "$0")/lib/common.sh"
grep -qE '^ +serve ' <<<"$("$WF" --help 2>/dev/null)" || skip "serve not built yet"
ensure_pg_user

# Trust material: the receiver's directory, and a client copy the PostgreSQL user reads.
"$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
mkdir -p "$T/tls-main"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
ROOT="$T/archive"
RPORT=$(free_port); PORT=$(free_port); SPORT=$(free_port)
share_scratch

# The receiver runs as the same unprivileged user as the standby (the guide's
# archive folder belongs to postgres).
as_pg "$WF" serve --root "$ROOT" --listen "127.0.0.1:$RPORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$RPORT"
# as_pg may run it under runuser: kill the receiver itself on exit, not only runuser.
WF_PIDS+=($(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | cut -d= -f2))

P=$(pg_init prim)
as_pg "$WF" setup primary --pgdata "$P" --standby-address 127.0.0.1 --replication-user postgres \
  --auth-method trust --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --archive-timeout 5 --apply \
  >"$T/setup.log" 2>&1 || { cat "$T/setup.log" >&2; fail "setup primary --apply"; }
grep -q "^archive_command = '.*push %p --to 127.0.0.1:$RPORT" "$P/postgresql.auto.conf" || fail "archive_command not set"
grep -qE "^host +replication +postgres +127.0.0.1/32 +trust" "$P/pg_hba.conf" || fail "no pg_hba.conf replication line"
# Applying twice changes nothing more.
out=$(as_pg "$WF" setup primary --pgdata "$P" --standby-address 127.0.0.1 --replication-user postgres \
  --auth-method trust --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --archive-timeout 5 --apply)
grep -q "nothing to change" <<<"$out" || fail "second setup --apply changed files again"
pg_start "$P" "$PORT"
as_pg "$PGBIN/pgbench" -q -i -s 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >"$T/pgbench.log" 2>&1 \
  || fail "pgbench -i"

as_pg "$WF" basebackup --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --name base.tar \
  -h 127.0.0.1 -p "$PORT" -U postgres -c fast >"$T/basebackup.log" 2>&1 \
  || { cat "$T/basebackup.log" >&2; fail "walferry basebackup"; }
ls "$ROOT"/main/files/base.tar* >/dev/null 2>&1 || fail "base backup not in the archive"

# WAL written after the backup reaches the archive before the standby exists:
# the standby must fetch it with `walferry get`.
as_pg "$PGBIN/pgbench" -n -t 300 -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >>"$T/pgbench.log" 2>&1 \
  || fail "pgbench"
for _ in 1 2 3; do
  psql_at "$PORT" "insert into pgbench_history(tid,bid,aid,delta,mtime) values (1,1,1,0,now()); select pg_switch_wal()" >/dev/null
done
LAST=$(psql_at "$PORT" "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 300); do
  [ "$(psql_at "$PORT" "select coalesce(last_archived_wal,'') from pg_stat_archiver")" \> "$LAST" ] && break
  [ "$(psql_at "$PORT" "select coalesce(last_archived_wal,'') from pg_stat_archiver")" = "$LAST" ] && break
  sleep 0.1
done
[ "$(psql_at "$PORT" "select failed_count from pg_stat_archiver")" = 0 ] || fail "archive_command failed: $(tail -5 "$P.log")"

S="$T/pg-stby"
as_pg "$WF" restore-base base.tar --from "$ROOT" --pgdata "$S" \
  --primary-conninfo "host=127.0.0.1 port=$PORT user=postgres application_name=walferry-standby" \
  >"$T/restore.log" 2>&1 || { cat "$T/restore.log" >&2; fail "restore-base"; }
pg_start "$S" "$SPORT"

# Streaming, as pg_stat_replication on the primary shows it.
for _ in $(seq 1 300); do
  [ "$(psql_at "$PORT" "select state from pg_stat_replication where application_name='walferry-standby'")" = streaming ] && break
  sleep 0.2
done
[ "$(psql_at "$PORT" "select state from pg_stat_replication where application_name='walferry-standby'")" = streaming ] \
  || fail "standby not streaming: $(tail -5 "$S.log")"
grep -q "restored log file \"$LAST\" from archive" "$S.log" \
  || fail "standby did not replay $LAST from the archive through walferry get"

# pgbench rows on the primary appear on the standby.
as_pg "$PGBIN/pgbench" -n -t 300 -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >>"$T/pgbench.log" 2>&1 \
  || fail "pgbench"
TARGET=$(psql_at "$PORT" "select pg_current_wal_lsn()")
for _ in $(seq 1 300); do
  [ "$(psql_at "$SPORT" "select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '$TARGET') >= 0")" = t ] && break
  sleep 0.1
done
Q="select count(*), sum(abalance) from pgbench_accounts union all select count(*), sum(delta) from pgbench_history"
[ "$(psql_at "$PORT" "$Q")" = "$(psql_at "$SPORT" "$Q")" ] || fail "standby differs from the primary"
[ "$(psql_at "$SPORT" "select count(*) from pgbench_history")" -gt 600 ] || fail "pgbench rows missing on the standby"

# status --json on the primary, and on the standby.
as_pg "$WF" status --json --pgdata "$P" -U postgres >"$T/status-primary.json" || fail "status (primary)"
as_pg "$WF" status --json --pgdata "$S" -U postgres --root "$ROOT" >"$T/status-standby.json" || fail "status (standby)"
python3 - "$T/status-primary.json" "$T/status-standby.json" <<'PY' || fail "status --json: $(cat "$T"/status-*.json)"
import json, sys
p = json.load(open(sys.argv[1]))["server"]
assert p["role"] == "primary", p
rows = [r for r in p["replication"] if r["application_name"] == "walferry-standby"]
assert rows and rows[0]["state"] == "streaming" and rows[0]["client_addr"] == "127.0.0.1", p
assert isinstance(rows[0]["replay_lag_bytes"], int), rows
assert p["archiver"]["archived_count"] >= 4 and p["archiver"]["failed_count"] == 0, p
assert p["ready_count"] is not None
s = json.load(open(sys.argv[2]))
assert s["server"]["role"] == "standby" and s["server"]["wal_receiver_status"] == "streaming", s
a = s["archive"][0]
assert a["cluster"] == "main" and a["gaps"] == [] and a["newest_segment"] >= "000000010000000000000004", a
PY

# Failover: promote the standby; it takes writes.
as_pg "$WF" promote --pgdata "$S" >"$T/promote.log" 2>&1 || { cat "$T/promote.log" >&2; fail "promote"; }
[ "$(psql_at "$SPORT" "select pg_is_in_recovery()")" = f ] || fail "standby still in recovery after promote"
psql_at "$SPORT" "create table after_failover(x int); insert into after_failover values (42)"
[ "$(psql_at "$SPORT" "select x from after_failover")" = 42 ] || fail "promoted standby does not take writes"
as_pg "$WF" promote --pgdata "$S" >/dev/null 2>&1 && fail "promote of a primary succeeded"
note "pg_standby: ok"
