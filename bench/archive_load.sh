#!/usr/bin/env bash
# A real PostgreSQL 15 under unthrottled pgbench (-c 8, DURATION seconds,
# default 120) with archive_command set to each tool in turn. Reports, side
# by side: pgbench TPS (and its ratio to archive_command = 'true'), the largest
# .ready backlog seen during the run (sampled every 0.5 s), and the seconds
# to drain the backlog after the load stops.
#   true        archive_command = 'true' (the cost-free baseline)
#   wf_agent    walferry agent + walferry push --agent-socket
#   wf_push     walferry push alone
#   pgbr_sync   pgbackrest archive-push
#   pgbr_async  pgbackrest archive-push, archive-async=y process-max=2
# Usage: WALFERRY_BIN=build/cli/walferry bench/archive_load.sh [DURATION]   (DURATION=15: CI-sized)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
DURATION=${1:-120}
ensure_pg_user
PGDATA=$(pg_init load)
PGPORT=$(free_port)
cat >>"$PGDATA/postgresql.conf" <<CONF
archive_mode = on
wal_level = replica
max_wal_size = 8GB
checkpoint_timeout = 30min
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '/tmp'
include_if_exists = 'bench.conf'
CONF
: >"$PGDATA/bench.conf"; share_scratch
start_pg() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 120 -l "$T/pg.log" start >/dev/null || { tail "$T/pg.log"; fail "pg start"; }; }
stop_pg() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 600 stop >/dev/null; }
start_pg
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 20 postgres >"$T/pgbench-init.log" 2>&1
stop_pg
ST="$PGDATA/pg_wal/archive_status"

"$WF" tls init "$T/tls" --cluster main >/dev/null
mkdir -p "$T/tls-main" "$T/run"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
chmod 0700 "$T/run"; chown -R "$WF_PG_USER" "$T/tls-main" "$T/run"
WPORT=$(free_port)
"$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>>"$T/serve.log" &
WF_PIDS+=("$!")
wait_port "$WPORT"
WFCONF="--to 127.0.0.1:$WPORT --tls-dir $T/tls-main"
PGBR="$T/pgbr"
for mode in n y; do
  mkdir -p "$PGBR/$mode/repo" "$PGBR/$mode/spool"
  cat >"$PGBR/$mode.conf" <<CONF
[global]
repo1-path=$PGBR/$mode/repo
compress-type=zst
archive-async=$mode
process-max=2
log-level-console=warn
log-level-file=off
lock-path=$PGBR/$mode
spool-path=$PGBR/$mode/spool

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=/tmp
pg1-user=postgres
CONF
done
share_scratch
start_pg
for mode in n y; do
  as_pg pgbackrest --config="$PGBR/$mode.conf" --stanza=bench stanza-create >"$T/pgbr.log" 2>&1 || { cat "$T/pgbr.log"; fail "stanza-create"; }
done
stop_pg

declare -A TPS MAXB DRAIN
AGENT_PID=
ready() { ls "$ST" | grep -c '\.ready$' || true; }
load() {  # NAME ARCHIVE_COMMAND
  local name=$1 cmd=$2 max=0 n t0
  echo "archive_command = '$cmd'" >"$PGDATA/bench.conf"
  start_pg
  psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
  as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -c 8 -j 2 -T "$DURATION" -N postgres >"$T/pgbench-$name.log" 2>&1 &
  local pb=$!
  while kill -0 "$pb" 2>/dev/null; do n=$(ready); [ "$n" -gt "$max" ] && max=$n; sleep 0.5; done
  wait "$pb" || fail "pgbench under $name"
  psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
  t0=$(date +%s.%N)
  while [ "$(ready)" -gt 0 ]; do n=$(ready); [ "$n" -gt "$max" ] && max=$n; sleep 0.1; done
  DRAIN[$name]=$(echo "$(date +%s.%N) - $t0" | bc -l)
  MAXB[$name]=$max
  TPS[$name]=$(grep -o 'tps = [0-9.]*' "$T/pgbench-$name.log" | head -1 | cut -d' ' -f3)
  stop_pg
  note "$name: tps ${TPS[$name]}, max backlog $max, drain ${DRAIN[$name]} s"
}
load true "true"
as_pg bash -c "echo \$\$ >'$T/agent.pid'; exec '$WF' agent $WFCONF --pgdata '$PGDATA' --agent-socket '$T/run/agent.sock'" >>"$T/agent.log" 2>&1 &
sleep 1; AGENT_PID=$(cat "$T/agent.pid"); WF_PIDS+=("$AGENT_PID")
load wf_agent "$WF push $WFCONF --agent-socket $T/run/agent.sock %p"
kill "$AGENT_PID"
load wf_push "$WF push $WFCONF %p"
load pgbr_sync "pgbackrest --config=$PGBR/n.conf --stanza=bench archive-push %p"
load pgbr_async "pgbackrest --config=$PGBR/y.conf --stanza=bench archive-push %p"

echo
echo "pgbench -c 8 -N for $DURATION s on PostgreSQL 15 with each archive_command ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-11s %10s %12s %16s %10s\n' config tps tps_vs_true max_ready_backlog drain_s
for k in true wf_agent wf_push pgbr_sync pgbr_async; do
  printf '%-11s %10.0f %11.2fx %16d %10.1f\n' "$k" "${TPS[$k]}" "$(echo "${TPS[$k]} / ${TPS[true]}" | bc -l)" "${MAXB[$k]}" "${DRAIN[$k]}"
done
