#!/usr/bin/env bash
# A real PostgreSQL 15 under unthrottled pgbench (-c 8 -j 2 -N, WF_LOAD_SECONDS
# per tool, default 120) plus WF_LOAD_BULK (default 2) sessions of back-to-back
# bulk inserts (100,000 rows each), with archive_command set to each tool in turn:
#   true        archive_command = 'true' (the cost-free baseline)
#   wf_push     walferry push alone
#   wf_agent    walferry agent + walferry push --agent-socket
#   pgbr_sync   pgbackrest archive-push (synchronous, zst, posix repo)
#   pgbr_async  pgbackrest archive-push, archive-async=y process-max=2
#   rsync       rsync -a over ssh to 127.0.0.1 (own sshd on a free port); a local
#               rsync -a into a directory when sshd is absent (the table says so)
# For each: pgbench TPS and its ratio to 'true', the largest .ready backlog
# (pg_wal/archive_status sampled every second during the load and the drain),
# the seconds to drain after the load stops, segments archived, load average.
# Correctness, checked for every tool that keeps bytes we can read back
# (walferry, rsync): every segment PostgreSQL marked .done during the run is on
# the receiver and byte-identical. A drain is capped at WF_DRAIN_CAP_S (default
# 300 s; the table then shows the segments left); with WF_DRAIN_STRICT=1 a
# drain that does not finish fails the run.
#
# Usage: WALFERRY_BIN=build/cli/walferry bench/pgbench_load.sh
#   WF_LOAD_SECONDS=120   seconds of pgbench per tool
#   WF_LOAD_TOOLS="..."   tools to run, in order (default: all of the above; 'true' first
#                         when listed, it is the TPS baseline)
#   WF_LOAD_OUT=DIR       writes DIR/pgbench_load.csv and DIR/pgbench_load.png (gnuplot)
# tests/e2e/load_pgbench.sh runs it short (15 s, true + two walferry tools) and
# asserts only correctness; speed figures come from a full run (docs/performance.md).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/lib/sshd.sh"
DURATION=${WF_LOAD_SECONDS:-120}
TOOLS=${WF_LOAD_TOOLS:-true wf_push wf_agent pgbr_sync pgbr_async rsync}
DRAIN_CAP=${WF_DRAIN_CAP_S:-300}
STRICT=${WF_DRAIN_STRICT:-}  # set: a drain past the cap fails the run (the e2e test)
OUT=${WF_LOAD_OUT:-}
BULK=${WF_LOAD_BULK:-2}  # sessions of bulk inserts running beside pgbench (0 = pgbench alone)
MIN_SEGS=${WF_LOAD_MIN_SEGMENTS:-1}  # a verified tool archiving fewer fails the run
ensure_pg_user
PGDATA=$(pg_init load)
PGPORT=$(free_port)
cat >>"$PGDATA/postgresql.conf" <<CONF
archive_mode = on
wal_level = replica
max_wal_size = 16GB
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
for k in $(seq 1 "$BULK"); do psql_at "$PGPORT" "create table bulk_$k (a int, b text)" >/dev/null; done
stop_pg
ST="$PGDATA/pg_wal/archive_status"
has() { [[ " $TOOLS " == *" $1 "* ]]; }

# ---------- walferry ----------
"$WF" tls init "$T/tls" --cluster main >/dev/null
mkdir -p "$T/tls-main" "$T/run"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
chmod 0700 "$T/run"; chown -R "$WF_PG_USER" "$T/tls-main" "$T/run"
WPORT=$(free_port)
RECV_PID=
start_receiver() {  # a fresh root per tool: what is on it was archived by that tool
  rm -rf "$T/wf-root"
  "$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>>"$T/serve.log" &
  RECV_PID=$!
  WF_PIDS+=("$RECV_PID")
  wait_port "$WPORT"
}
stop_receiver() { kill "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true; }
WFCONF="--to 127.0.0.1:$WPORT --tls-dir $T/tls-main"
AGENT_PID=
start_agent() {
  rm -f "$T/agent.pid"
  as_pg bash -c "echo \$\$ >'$T/agent.pid'; exec '$WF' agent $WFCONF --pgdata '$PGDATA' --agent-socket '$T/run/agent.sock'" \
    >>"$T/agent.log" 2>&1 &
  for _ in $(seq 1 200); do [ -s "$T/agent.pid" ] && [ -S "$T/run/agent.sock" ] && break; sleep 0.05; done
  [ -S "$T/run/agent.sock" ] || fail "agent did not come up (see $T/agent.log)"
  AGENT_PID=$(cat "$T/agent.pid"); WF_PIDS+=("$AGENT_PID")
}
stop_agent() { kill "$AGENT_PID"; for _ in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done; }

# ---------- pgBackRest ----------
PGBR="$T/pgbr"
if has pgbr_sync || has pgbr_async; then
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
fi

# ---------- rsync: over ssh to 127.0.0.1 when sshd is there ----------
RSYNC_KIND=local
RSYNC_CMD="rsync -a %p $T/rsync-dst/%f"
mkdir -p "$T/rsync-dst"
if has rsync && [ -x /usr/sbin/sshd ] && [ "$(id -u)" -eq 0 ]; then
  SSHD=$T/ssh
  start_loopback_sshd "$SSHD"
  chown "$WF_PG_USER" "$SSHD/client_key"; chmod 0600 "$SSHD/client_key"
  RSYNC_CMD="rsync -a -e \"$SSH\" %p root@127.0.0.1:$T/rsync-dst/%f"
  RSYNC_KIND=ssh
elif has rsync; then
  note "rsync: no sshd (or not root): rsync -a into a local directory instead"
fi
share_scratch

# ---------- one tool ----------
declare -A TPS MAXB DRAIN NARCH LOADAVG LEFT
ready() { ls "$ST" | grep -c '\.ready$' || true; }
done_list() { ls "$ST" | grep -E '^[0-9A-F]{24}\.done$' | sed 's/\.done$//' | sort || true; }
# verify NAME KIND: every segment that became .done during this run is on the
# receiver (KIND wf: zstd store under wf-root; rsync: raw files) and identical.
verify() {
  local name=$1 kind=$2 n=0 s
  comm -13 "$T/done-before" "$T/done-after" >"$T/done-$name"
  while read -r s; do
    [ -n "$s" ] || continue
    case $kind in
      wf) [ -f "$T/wf-root/main/wal/$s.zst" ] || fail "$name: $s is .done but not on the receiver"
          zstd -qdc "$T/wf-root/main/wal/$s.zst" | cmp -s - "$PGDATA/pg_wal/$s" || fail "$name: $s differs on the receiver" ;;
      rsync) cmp -s "$T/rsync-dst/$s" "$PGDATA/pg_wal/$s" || fail "$name: $s missing or different in the rsync target" ;;
    esac
    n=$((n + 1))
  done <"$T/done-$name"
  [ "$n" -ge "$MIN_SEGS" ] || fail "$name: only $n segments archived during the load (want >= $MIN_SEGS)"
  note "$name: $n archived segments durable and identical on the target"
}
load() {  # NAME ARCHIVE_COMMAND VERIFY_KIND ("" = no read-back)
  local name=$1 cmd=$2 kind=$3 max=0 n t0 now
  echo "archive_command = '$cmd'" >"$PGDATA/bench.conf"
  start_pg
  psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
  # What the previous runs left: archived by another tool, not part of this one.
  for _ in $(seq 1 600); do [ "$(ready)" -eq 0 ] && break; sleep 0.1; done
  done_list >"$T/done-before"
  local la0; la0=$(cut -d' ' -f1 /proc/loadavg)
  as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -c 8 -j 2 -T "$DURATION" -N postgres >"$T/pgbench-$name.log" 2>&1 &
  local pb=$! la_sum=0 la_n=0 k
  local bulk_pids=() end=$(($(date +%s) + DURATION))
  for k in $(seq 1 "$BULK"); do  # bulk writers: WAL faster than pgbench alone makes it
    as_pg bash -c "while [ \$(date +%s) -lt $end ]; do '$PGBIN/psql' -X -q -h 127.0.0.1 -p $PGPORT -U postgres -d postgres \
      -c 'insert into bulk_$k select g, md5(g::text) from generate_series(1, 100000) g' >/dev/null || exit 1; done" &
    bulk_pids+=("$!")
  done
  while kill -0 "$pb" 2>/dev/null; do
    n=$(ready); [ "$n" -gt "$max" ] && max=$n
    la_sum=$(echo "$la_sum + $(cut -d' ' -f1 /proc/loadavg)" | bc -l); la_n=$((la_n + 1))
    echo "$name $la_n $n" >>"$T/backlog.dat"
    sleep 1
  done
  wait "$pb" || fail "pgbench under $name"
  for k in "${bulk_pids[@]}"; do wait "$k" || fail "bulk insert under $name"; done
  psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
  t0=$(date +%s.%N)
  local capped=0
  while [ "$(ready)" -gt 0 ]; do
    n=$(ready); [ "$n" -gt "$max" ] && max=$n
    if [ "$(echo "$(date +%s.%N) - $t0 > $DRAIN_CAP" | bc)" -eq 1 ]; then
      [ -n "$STRICT" ] && fail "$name: $n segments still .ready $DRAIN_CAP s after the load stopped"
      note "$name: $n segments still .ready after $DRAIN_CAP s: drain capped"
      capped=$n
      break
    fi
    sleep 0.2
  done
  now=$(date +%s.%N)
  DRAIN[$name]=$(echo "$now - $t0" | bc -l)
  LEFT[$name]=$capped
  MAXB[$name]=$max
  LOADAVG[$name]=$(echo "($la0 + $la_sum) / ($la_n + 1)" | bc -l)
  TPS[$name]=$(grep -o 'tps = [0-9.]*' "$T/pgbench-$name.log" | head -1 | cut -d' ' -f3)
  done_list >"$T/done-after"
  NARCH[$name]=$(comm -13 "$T/done-before" "$T/done-after" | wc -l)
  [ -n "$kind" ] && verify "$name" "$kind"
  grep -q "FATAL\|PANIC" "$T/pg.log" && fail "$name: PostgreSQL logged a FATAL/PANIC"
  for k in $(seq 1 "$BULK"); do psql_at "$PGPORT" "truncate bulk_$k" >/dev/null; done
  if [ "$capped" -gt 0 ]; then
    # A fast shutdown would make the archiver finish the backlog first.
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null
  else
    stop_pg
  fi
  : >"$T/pg.log"
  note "$name: tps ${TPS[$name]}, max backlog $max, drain ${DRAIN[$name]} s, ${NARCH[$name]} segments"
}

: >"$T/backlog.dat"
for tool in $TOOLS; do
  case $tool in
    true) load true "true" "" ;;
    wf_push) start_receiver; load wf_push "$WF push $WFCONF %p" wf; stop_receiver ;;
    wf_agent)
      start_receiver; start_agent
      load wf_agent "$WF push $WFCONF --agent-socket $T/run/agent.sock %p" wf
      stop_agent; stop_receiver ;;
    pgbr_sync) load pgbr_sync "pgbackrest --config=$PGBR/n.conf --stanza=bench archive-push %p" "" ;;
    pgbr_async) load pgbr_async "pgbackrest --config=$PGBR/y.conf --stanza=bench archive-push %p" "" ;;
    rsync) load rsync "$RSYNC_CMD" rsync ;;
    *) fail "unknown tool $tool" ;;
  esac
done

# ---------- report ----------
label() { case $1 in rsync) echo "rsync_$RSYNC_KIND" ;; *) echo "$1" ;; esac; }
BASE=${TPS[true]:-}
echo
echo "pgbench -c 8 -j 2 -N + $BULK bulk-insert sessions for $DURATION s per tool on PostgreSQL 15, scale 20 ($(nproc) cores)"
printf '%-12s %9s %12s %18s %9s %9s %9s\n' config tps tps_vs_true max_ready_backlog drain_s segments load_avg
CSV_ROWS="config,tps,tps_vs_true,max_ready_backlog,drain_s,segments,load_avg,left_ready"
for k in $TOOLS; do
  ratio=NA; [ -n "$BASE" ] && ratio=$(printf '%.2fx' "$(echo "${TPS[$k]} / $BASE" | bc -l)")
  printf '%-12s %9.0f %12s %18d %9.1f %9d %9.1f%s\n' "$(label "$k")" "${TPS[$k]}" "$ratio" "${MAXB[$k]}" "${DRAIN[$k]}" \
    "${NARCH[$k]}" "${LOADAVG[$k]}" "$([ "${LEFT[$k]}" -gt 0 ] && echo "  (drain capped: ${LEFT[$k]} still .ready)")"
  CSV_ROWS+=$'\n'"$(label "$k"),${TPS[$k]},$ratio,${MAXB[$k]},$(printf '%.1f' "${DRAIN[$k]}"),${NARCH[$k]},$(printf '%.1f' "${LOADAVG[$k]}"),${LEFT[$k]}"
done
if [ -n "$OUT" ]; then
  mkdir -p "$OUT"
  echo "$CSV_ROWS" >"$OUT/pgbench_load.csv"
  note "csv: $OUT/pgbench_load.csv"
  if command -v gnuplot >/dev/null; then
    tail -n +2 "$OUT/pgbench_load.csv" | tr ',' ' ' >"$T/chart.dat"
    # backlog over time per tool, for the second panel
    for k in $TOOLS; do awk -v k="$k" '$1 == k {print $2, $3}' "$T/backlog.dat" >"$T/backlog-$k.dat"; done
    plots=""
    for k in $TOOLS; do plots+="'$T/backlog-$k.dat' using 1:2 with steps lw 2 title '$(label "$k")', "; done
    gnuplot <<GP
set terminal pngcairo size 1100,800 noenhanced
set output '$OUT/pgbench_load.png'
set multiplot layout 2,2 title "PostgreSQL 15 under pgbench -c 8 -N + $BULK bulk-insert sessions, $DURATION s per archive_command ($(nproc) cores)"
set style fill solid 0.8
set boxwidth 0.6
set grid ytics
set xtics rotate by -25
unset key
set yrange [0:*]
set title "pgbench TPS"
plot '$T/chart.dat' using 0:2:xtic(1) with boxes lc rgb '#3a7bd5', '' using 0:2:(sprintf('%.0f', \$2)) with labels offset 0,0.7
set title "largest .ready backlog (segments)"
plot '$T/chart.dat' using 0:4:xtic(1) with boxes lc rgb '#d5563a', '' using 0:4:(sprintf('%d', \$4)) with labels offset 0,0.7
set title "drain after the load stops (s)"
plot '$T/chart.dat' using 0:5:xtic(1) with boxes lc rgb '#5aa05a', '' using 0:5:(sprintf('%.1f', \$5)) with labels offset 0,0.7
set title ".ready backlog during the load (s)"
set key top left
set xtics norotate
plot ${plots%, }
unset multiplot
GP
    note "chart: $OUT/pgbench_load.png"
  fi
fi
