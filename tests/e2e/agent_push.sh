#!/usr/bin/env bash
# walferry agent + walferry push --agent-socket on a real PostgreSQL 15:
#  - read-ahead: with archive_command failing, the agent ships every .ready
#    segment ahead, leaves the .ready files alone; once archive_command is push
#    through the agent, every request is answered from what was shipped ahead;
#  - kill -9 of the agent under load, then a restart: every segment PostgreSQL
#    marked .done is durable on the receiver and byte-identical;
#  - agent stopped: push archives alone; a different file under an archived
#    name through the agent -> exit 4, original intact; the socket directory
#    must be private.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/agent.sh"
"$WF" agent --help >/dev/null 2>&1 || skip "agent not built"
ensure_pg_user

start_receiver_and_config

PGDATA=$(pg_init main)
PGPORT=$(free_port)
# In postgresql.conf, not -c: ALTER SYSTEM must be able to change it later.
echo "archive_command = '/bin/false'" >>"$PGDATA/postgresql.conf"
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica -c wal_keep_size=4GB

# --- socket directory open to others: refused
mkdir -p "$T/open" && chmod 0755 "$T/open" && chown "$WF_PG_USER" "$T/open"
rc=0; out=$(as_pg "$WF" agent --config "$T/main.conf" --pgdata "$PGDATA" --agent-socket "$T/open/a.sock" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && grep -q "mode 0700" <<<"$out" || fail "agent accepted a socket directory open to others: $rc $out"

# --- read-ahead while PostgreSQL's own archive_command fails
make_segments 5
start_agent
want=$(ready_count)
[ "$want" -ge 5 ] || fail "expected >= 5 .ready, got $want"
for _ in $(seq 1 300); do [ "$(agent_status shipped_files)" -ge "$want" ] && break; sleep 0.1; done
[ "$(agent_status shipped_files)" -ge "$want" ] || fail "agent shipped $(agent_status shipped_files) of $want ahead"
[ "$(ready_count)" -eq "$want" ] || fail "the agent touched .ready files"
psql_at "$PGPORT" "alter system set archive_command = '$WF push --config $T/main.conf %p'" >/dev/null
psql_at "$PGPORT" "select pg_reload_conf()" >/dev/null
wait_no_ready
req=$(agent_status requests); hit=$(agent_status requests_hit)
[ "$req" -ge "$want" ] || fail "only $req requests reached the agent (want >= $want)"
[ "$hit" -eq "$req" ] || fail "$hit of $req requests answered from read-ahead"
note "read-ahead: $want segments shipped ahead, $hit/$req requests answered at once"

# --- kill -9 under load, restart
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 8 postgres >"$T/pgbench.log" 2>&1 &
LOAD=$!
sleep 1.5
kill -9 "$AGENT_PID"
sleep 0.5
start_agent
wait "$LOAD" || fail "pgbench -i"
make_segments 2
wait_no_ready
n=$(verify_done)
[ "$n" -ge 12 ] || fail "only $n segments archived"
[ "$(agent_status requests)" -ge 1 ] || fail "the restarted agent got no requests"
note "kill -9 under load: $n .done segments durable and identical on the receiver"

# --- agent stopped: push alone
kill -TERM "$AGENT_PID"
for _ in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$AGENT_PID" 2>/dev/null && fail "agent did not stop on SIGTERM"
make_segments 2
wait_no_ready
m=$(verify_done)
[ "$m" -ge $((n + 2)) ] || fail "push without agent: $m segments, want >= $((n + 2))"
grep -q "FATAL\|PANIC" "$PGDATA.log" && fail "PostgreSQL logged a FATAL/PANIC"

# --- through the agent: different content under an archived name -> 4, original intact
start_agent
SEG=$(ls "$ROOT/main/wal" | grep -E '^[0-9A-F]{24}\.zst$' | head -1); SEG=${SEG%.zst}
mkdir -p "$T/fake"
cp "$PGDATA/pg_wal/$SEG" "$T/fake/$SEG"
printf 'X' | dd of="$T/fake/$SEG" bs=1 seek=100000 conv=notrunc status=none
share_scratch
before=$(sha256sum <"$ROOT/main/wal/$SEG.zst")
rc=0; out=$(as_pg "$WF" push --config "$T/main.conf" "$T/fake/$SEG" 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "different content through the agent: exit $rc ($out), want 4"
grep -q "through the agent" <<<"$out" || fail "the agent did not answer: $out"
[ "$(sha256sum <"$ROOT/main/wal/$SEG.zst")" = "$before" ] || fail "original segment changed"
# identical content through the agent -> 0
(cd "$PGDATA" && as_pg "$WF" push --config "$T/main.conf" "pg_wal/$SEG") || fail "identical re-push through the agent"
echo "agent_push: ok"
