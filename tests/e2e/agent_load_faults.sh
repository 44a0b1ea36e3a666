#!/usr/bin/env bash
# The agent under a real pgbench load (PostgreSQL 15, archive_command = walferry
# push through the agent):
#  - kill -9 of the agent in the middle of the load loses nothing: once the
#    backlog drained, every segment PostgreSQL marked archived (.done, and
#    pg_stat_archiver.last_archived_wal) is on the receiver and byte-identical;
#    the restarted agent picks up where it was (it answers requests and ships
#    ahead again);
#  - the agent logs structured lines (timestamp, level, name=, bytes=) and
#    serves --metrics (Prometheus text: backlog, shipped files/bytes);
#  - the receiver stopped for a while under load: `walferry status --check`
#    fires (backlog and oldest .ready past short thresholds), the agent's
#    metrics show the backlog, and --check clears once the receiver is back
#    and the backlog drained.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/agent.sh"
"$WF" agent --help >/dev/null 2>&1 || skip "agent not built"
ensure_pg_user
command -v curl >/dev/null || skip "curl not installed"

start_receiver_and_config
RECV_PID=${WF_PIDS[-1]}
MPORT=$(free_port)
AGENT_ARGS="--metrics 127.0.0.1:$MPORT --log-level info"

PGDATA=$(pg_init main)
PGPORT=$(free_port)
echo "archive_command = '$WF push --config $T/main.conf %p'" >>"$PGDATA/postgresql.conf"
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica -c wal_keep_size=4GB -c max_wal_size=4GB
as_pg "$PGBIN/pgbench" -q -i -s 10 -h 127.0.0.1 -p "$PGPORT" -U postgres postgres >"$T/pgbench.log" 2>&1 || fail "pgbench -i"
switch() { psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null; }
pgbench_bg() {  # SECONDS: an unthrottled load in the background; sets LOAD
  as_pg "$PGBIN/pgbench" -n -c 8 -j 2 -N -T "$1" -h 127.0.0.1 -p "$PGPORT" -U postgres postgres >>"$T/pgbench.log" 2>&1 &
  LOAD=$!
}
# Sequential bulk inserts alongside pgbench: segments fill in seconds, whatever the TPS.
bulk() { psql_at "$PGPORT" "create table if not exists filler(a int, b text); insert into filler select g, md5(g::text) from generate_series(1, 150000) g" >/dev/null; }

# ---------- kill -9 under load ----------
start_agent
TS='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
pgbench_bg 20
for _ in 1 2 3; do bulk; done
shipped_before=$(agent_status shipped_files)
[ "$shipped_before" -ge 1 ] || fail "the agent shipped nothing before the kill"
kill -9 "$AGENT_PID"
note "agent killed with $shipped_before file(s) shipped"
bulk  # archive_command runs push alone (no agent) meanwhile
sleep 1
start_agent
for _ in 1 2 3; do bulk; done
wait "$LOAD" || fail "pgbench under the kill -9"
switch
wait_no_ready
n=$(verify_done)
last=$(psql_at "$PGPORT" "select last_archived_wal from pg_stat_archiver")
[[ "$last" =~ ^[0-9A-F]{24}$ ]] || fail "pg_stat_archiver.last_archived_wal is '$last'"
zstd -qdc "$ROOT/main/wal/$last.zst" | cmp -s - "$PGDATA/pg_wal/$last" || fail "last archived $last not identical on the receiver"
[ "$(psql_at "$PGPORT" "select failed_count from pg_stat_archiver")" -ge 0 ]
[ "$n" -ge 8 ] || fail "only $n segments archived under load"
req=$(agent_status requests)
[ "$req" -ge 1 ] || fail "the restarted agent got no requests"
# The restarted agent ships ahead again: new .ready files are on the receiver before PostgreSQL asks.
[ "$(agent_status shipped_files)" -ge 1 ] || fail "the restarted agent shipped nothing"
note "kill -9 under load: $n .done segments durable and identical, last archived $last, restarted agent: $req requests"

# ---------- structured log lines and metrics ----------
grep -qE "^$TS INFO agent: watching .*archive_status" "$T/agent.log" || { cat "$T/agent.log" >&2; fail "no timestamped start line"; }
grep -qE "^$TS INFO agent: name=[0-9A-F]{24} (placed|identical) bytes=16777216 wire=[0-9]+ ms=[0-9]+ (ahead|requested)$" "$T/agent.log" \
  || { cat "$T/agent.log" >&2; fail "no structured transfer line"; }
# ("Killed" is runuser telling of the kill -9, not an agent line.)
bad=$(grep -vE "^$TS (DEBUG|INFO|WARN|ERROR) " "$T/agent.log" | grep -vcx "Killed" || true)
[ "$bad" = 0 ] || { grep -vE "^$TS (DEBUG|INFO|WARN|ERROR) " "$T/agent.log" >&2; fail "$bad agent line(s) without timestamp and level"; }
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/metrics.txt" || fail "agent --metrics does not answer"
for re in '^# TYPE walferry_archived_bytes_total counter$' '^walferry_archived_bytes_total [1-9][0-9]*$' \
          '^walferry_archived_files_total [1-9][0-9]*$' '^walferry_archive_backlog_segments [0-9]+$' \
          '^walferry_agent_requests_total [1-9][0-9]*$' '^walferry_agent_last_success_timestamp_seconds [1-9][0-9]*$'; do
  grep -qE "$re" "$T/metrics.txt" || { cat "$T/metrics.txt" >&2; fail "agent metrics lack /$re/"; }
done

# ---------- the receiver stopped under load: status --check fires, then clears ----------
STATUS=(as_pg "$WF" status --pgdata "$PGDATA" -U postgres -p "$PGPORT" -h 127.0.0.1)
CHECK=(--check --max-backlog 3 --max-oldest-age 15)
"${STATUS[@]}" "${CHECK[@]}" >"$T/check-ok.txt" || { cat "$T/check-ok.txt" >&2; fail "--check of a healthy primary failed"; }
kill "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true
pgbench_bg 15
fired=0
for _ in $(seq 1 60); do
  bulk
  rc=0; "${STATUS[@]}" "${CHECK[@]}" >"$T/check-bad.txt" 2>&1 || rc=$?
  if [ "$rc" = 1 ]; then fired=1; break; fi
  sleep 0.5
done
[ "$fired" = 1 ] || { cat "$T/check-bad.txt" >&2; fail "--check did not fire with the receiver stopped"; }
grep -qE '^ARCHIVE CRITICAL - ' "$T/check-bad.txt" || { cat "$T/check-bad.txt" >&2; fail "no ARCHIVE CRITICAL line"; }
wait "$LOAD" || fail "pgbench under the outage"
note "receiver down: $(head -1 "$T/check-bad.txt")"
# The agent's own figures show the stall too (its rescan sees the .ready files;
# its transfers are still retrying with back-off, so no failure is counted yet).
stall=0
for _ in $(seq 1 20); do
  curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/metrics-down.txt" || fail "agent --metrics does not answer"
  grep -qE '^walferry_archive_backlog_segments ([4-9]|[1-9][0-9]+)$' "$T/metrics-down.txt" && { stall=1; break; }
  sleep 0.5
done
[ "$stall" = 1 ] || { cat "$T/metrics-down.txt" >&2; fail "agent metrics do not show the backlog"; }
"$WF" serve --root "$ROOT" --listen "127.0.0.1:$PORT" --tls-dir "$T/tls" >>"$T/serve.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$PORT"
cleared=0
for _ in $(seq 1 120); do
  switch  # wakes the archiver (it waits up to 60 s after three failures)
  rc=0; "${STATUS[@]}" "${CHECK[@]}" >"$T/check-back.txt" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then cleared=1; break; fi
  sleep 0.5
done
[ "$cleared" = 1 ] || { cat "$T/check-back.txt" >&2; fail "--check did not clear after the receiver came back"; }
wait_no_ready
m=$(verify_done)
[ "$m" -gt "$n" ] || fail "no new segment archived after the outage ($m <= $n)"
note "receiver back: $(head -1 "$T/check-back.txt"); $m .done segments identical on the receiver"
grep -q "FATAL\|PANIC" "$PGDATA.log" && fail "PostgreSQL logged a FATAL/PANIC"
echo "agent_load_faults: ok"
