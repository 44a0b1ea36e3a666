#!/usr/bin/env bash
# archive_library = 'walferry_archive' on a real PostgreSQL 15 with the agent:
#  - the archiver drains real WAL through the module (no archive_command), every
#    .done segment is durable and identical on the receiver, no failures;
#  - agent down: the module logs one clear line, returns false, PostgreSQL
#    keeps the .ready and counts a failure; agent back: it archives them;
#  - a different file already on the receiver under the next name: the
#    agent's exists-different reaches the server log and the segment stays .ready.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/agent.sh"
[ -n "${WALFERRY_PGMODULE:-}" ] && [ -f "$WALFERRY_PGMODULE" ] || skip "archive module not built (needs postgresql-server-dev-15)"
ensure_pg_user
cp "$WALFERRY_PGMODULE" "$T/walferry_archive.so"

start_receiver_and_config

PGDATA=$(pg_init main)
PGPORT=$(free_port)
start_agent
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica -c wal_keep_size=4GB \
  -c "archive_library='$T/walferry_archive.so'" -c "walferry_archive.socket='$T/run/agent.sock'"
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 5 postgres >"$T/pgbench.log" 2>&1 || fail "pgbench -i"
make_segments 2
wait_no_ready
n=$(verify_done)
[ "$n" -ge 6 ] || fail "only $n segments archived through the module"
[ "$(psql_at "$PGPORT" "select failed_count from pg_stat_archiver")" -eq 0 ] || fail "archiver failures with the agent up"
[ "$(agent_status requests)" -ge "$n" ] || fail "the module did not go through the agent"
note "$n segments archived by the module through the agent, identical on the receiver"

# --- agent down
grep -q 'walferry_archive:' "$PGDATA.log" && fail "module warnings while the agent was up"
kill -9 "$AGENT_PID"
make_segments 1
for _ in $(seq 1 100); do
  [ "$(psql_at "$PGPORT" "select failed_count from pg_stat_archiver")" -ge 1 ] && break; sleep 0.1
done
[ "$(psql_at "$PGPORT" "select failed_count from pg_stat_archiver")" -ge 1 ] || fail "no failure counted with the agent down"
grep -q 'walferry_archive: cannot reach the walferry agent' "$PGDATA.log" || fail "no clear log line with the agent down"
[ "$(ready_count)" -ge 1 ] || fail "segment not kept .ready with the agent down"
start_agent
wait_no_ready
m=$(verify_done)
[ "$m" -ge $((n + 1)) ] || fail "after the agent came back: $m segments, want >= $((n + 1))"

# --- exists-different on the receiver: refused, segment kept
psql_at "$PGPORT" "insert into filler values (1, 'x')" >/dev/null  # past the segment boundary
next=$(psql_at "$PGPORT" "select pg_walfile_name(pg_current_wal_lsn())")
[ -f "$ROOT/main/wal/$next.zst" ] && fail "$next already archived"
mkdir -p "$ROOT/main/wal"
echo "not this segment" | zstd -q >"$ROOT/main/wal/$next.zst"
make_segments 1
for _ in $(seq 1 100); do grep -q "walferry_archive: archiving \"$next\" failed" "$PGDATA.log" && break; sleep 0.1; done
grep -qi "differ" <<<"$(grep "walferry_archive: archiving \"$next\" failed" "$PGDATA.log" | head -1)" \
  || fail "exists-different did not reach the server log: $(grep walferry_archive "$PGDATA.log" | tail -2)"
[ -f "$PGDATA/pg_wal/archive_status/$next.ready" ] || fail "$next not kept .ready after a refusal"
grep -q "PANIC\|server process .* was terminated" "$PGDATA.log" && fail "the server crashed"
echo "agent_archive_module: ok"
