#!/usr/bin/env bash
# Archive throughput as PostgreSQL really drives it: NSEG (default 500) real
# WAL segments are generated with archiving paused (archive_mode=on, no
# archive_command: the .ready files pile up), then for each configuration the
# server is restarted with it and the REAL archiver drains the backlog, one
# call at a time; the clock runs from server start to the last .ready gone.
# Configurations, side by side in one run:
#   floor_true       archive_command = 'true'  (the archiver's own cost: a shell per segment, .ready -> .done)
#   floor_cp         cp to a local directory, fsync, rename (an uncompressed local copy: no network, no codec)
#   wf_push          archive_command = walferry push %p       (TLS session resumption)
#   wf_push_noresume the same with --tls-session-cache off    (full TLS handshake per call)
#   wf_agent         walferry agent + archive_command = walferry push --agent-socket %p
#   wf_module        walferry agent + archive_library = walferry_archive (no fork/exec)
#   pgbr_sync        pgbackrest archive-push %p (compress-type=zst, posix repo)
#   pgbr_async       pgbackrest archive-push with archive-async=y process-max=2
#   rsync_ssh        rsync -a over ssh to 127.0.0.1 (own sshd; capped at RSYNC_CAP_S seconds)
# Every receiver fsyncs; walferry's archive is checked segment by segment.
# Usage: WALFERRY_BIN=build/cli/walferry [WALFERRY_PGMODULE=.../walferry_archive.so] bench/archive_e2e.sh [NSEG]
#   NSEG=20 is the short CI-sized run (< 2 min). SKIP_SSH=1 skips rsync. CHART=file.png writes a gnuplot chart.
# Prints seconds, segments/s and ratios to pgBackRest sync and async.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/lib/pgbackrest.sh"
. "$HERE/lib/sshd.sh"
NSEG=${1:-500}
RSYNC_CAP_S=${RSYNC_CAP_S:-120}
MODULE=${WALFERRY_PGMODULE:-$(dirname "$WF")/../pgmodule/walferry_archive.so}
ensure_pg_user

# ---------- real WAL, archiving paused ----------
note "generating $NSEG real WAL segments with pgbench (archiving paused)"
PGDATA=$(pg_init bench)
PGPORT=$(free_port)
cat >>"$PGDATA/postgresql.conf" <<CONF
archive_mode = on
wal_level = replica
wal_keep_size = 64GB
max_wal_size = 64GB
checkpoint_timeout = 1h
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '/tmp'
include_if_exists = 'bench.conf'
CONF
: >"$PGDATA/bench.conf"; share_scratch
start_pg() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 120 -l "$T/pg.log" start >/dev/null || { tail "$T/pg.log"; fail "pg start"; }; }
stop_pg() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 300 stop >/dev/null; }
start_pg
# Segment number over the whole LSN range (log id * segments per id + segment): the
# low 8 digits alone wrap at 256 for 16 MiB segments.
segno() { psql_at "$PGPORT" "select ('x' || substr(f, 9, 8))::bit(32)::bigint * 256 + ('x' || substr(f, 17, 8))::bit(32)::bigint from pg_walfile_name(pg_current_wal_lsn()) f"; }
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s $((NSEG / 4 + 2)) postgres >"$T/pgbench.log" 2>&1
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -T 5 -c 2 -j 2 postgres >>"$T/pgbench.log" 2>&1
while [ "$(segno)" -le "$((NSEG))" ]; do
  psql_at "$PGPORT" "insert into pgbench_history select (random()*100)::int, (random()*10)::int, g, (random()*10000)::int, now(), substr(md5(g::text), 1, 22) from generate_series(1, 300000) g" >/dev/null
done
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
stop_pg
ST="$PGDATA/pg_wal/archive_status"
ls "$ST" | grep -E '^[0-9A-F]{24}\.ready$' | sed 's/\.ready$//' | sort | head -n "$NSEG" >"$T/segs"
# Keep exactly NSEG .ready files (the oldest); the rest are marked done for every run alike.
for f in "$ST"/*.ready; do b=$(basename "$f" .ready); grep -qx "$b" "$T/segs" || mv "$f" "$ST/$b.done"; done
[ "$(wc -l <"$T/segs")" -eq "$NSEG" ] || fail "only $(wc -l <"$T/segs") segments"
note "$NSEG segments of $(du -sch $(sed "s|^|$PGDATA/pg_wal/|" "$T/segs") | tail -1 | cut -f1) ready"

declare -A SECS COUNT
reset_ready() { while read -r s; do [ -f "$ST/$s.done" ] && mv "$ST/$s.done" "$ST/$s.ready"; done <"$T/segs"; true; }
ready_left() { ls "$ST" | grep -c '\.ready$' || true; }
# drain NAME CAP_S: starts the server with bench.conf, times until no .ready is left (or CAP_S).
drain() {
  local name=$1 cap=${2:-3600} t0 t1 left
  reset_ready
  share_scratch
  t0=$(date +%s.%N)
  start_pg
  while :; do
    left=$(ready_left)
    [ "$left" -eq 0 ] && break
    if [ "$(echo "$(date +%s.%N) - $t0 > $cap" | bc)" -eq 1 ]; then break; fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  if [ "$left" -gt 0 ]; then
    # Capped: a fast shutdown would make the archiver finish the backlog first.
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null
  else
    stop_pg
  fi
  grep -q "archive command failed\|walferry_archive: " "$T/pg.log" && note "$name: archiver reported failures (see pg.log)"
  : >"$T/pg.log"
  SECS[$name]=$(echo "$t1 - $t0" | bc -l)
  COUNT[$name]=$((NSEG - left))
  note "$name: ${COUNT[$name]} segments in ${SECS[$name]} s"
}

# ---------- walferry receiver ----------
"$WF" tls init "$T/tls" --cluster main >/dev/null
mkdir -p "$T/tls-main" "$T/run"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
chmod 0700 "$T/run"
WPORT=$(free_port)
start_receiver() {  # fresh root each time: nothing is "already archived"
  rm -rf "$T/wf-root"
  "$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>>"$T/serve.log" &
  RECV_PID=$!
  WF_PIDS+=("$RECV_PID")
  wait_port "$WPORT"
}
stop_receiver() { kill "$RECV_PID"; wait "$RECV_PID" 2>/dev/null || true; }
check_wf_archive() {
  local n
  n=$(ls "$T/wf-root/main/wal" | grep -cE '^[0-9A-F]{24}' || true)
  [ "$n" -ge "$NSEG" ] || fail "$1: walferry archive holds $n of $NSEG segments"
  local s; s=$(head -1 "$T/segs")
  zstd -qdc "$T/wf-root/main/wal/$s.zst" | cmp -s - "$PGDATA/pg_wal/$s" || fail "$1: $s differs"
}
WFCONF="--to 127.0.0.1:$WPORT --tls-dir $T/tls-main"
AGENT_PID=
start_agent() {
  rm -f "$T/agent.pid"
  as_pg bash -c "echo \$\$ >'$T/agent.pid'; exec '$WF' agent $WFCONF --pgdata '$PGDATA' --agent-socket '$T/run/agent.sock'" \
    >>"$T/agent.log" 2>&1 &
  for _ in $(seq 1 100); do [ -s "$T/agent.pid" ] && [ -S "$T/run/agent.sock" ] && break; sleep 0.05; done
  AGENT_PID=$(cat "$T/agent.pid"); WF_PIDS+=("$AGENT_PID")
  sleep 0.2
}
stop_agent() { kill "$AGENT_PID"; for _ in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done; rm -f "$T/run/agent.sock"; }

# ---------- floors: what PostgreSQL's archiver costs by itself, and a local copy ----------
echo "archive_command = 'true'" >"$PGDATA/bench.conf"
drain floor_true
mkdir -p "$T/cp-dst"; chown "$WF_PG_USER" "$T/cp-dst"
echo "archive_command = 'test ! -f $T/cp-dst/%f && cp %p $T/cp-dst/%f.tmp && sync $T/cp-dst/%f.tmp && mv $T/cp-dst/%f.tmp $T/cp-dst/%f && sync $T/cp-dst'" \
  >"$PGDATA/bench.conf"
drain floor_cp
rm -rf "$T/cp-dst"

chown -R "$WF_PG_USER" "$T/tls-main" "$T/run"
start_receiver
echo "archive_command = '$WF push $WFCONF %p'" >"$PGDATA/bench.conf"
drain wf_push; check_wf_archive wf_push; stop_receiver

start_receiver
echo "archive_command = '$WF push $WFCONF --tls-session-cache off %p'" >"$PGDATA/bench.conf"
drain wf_push_noresume; check_wf_archive wf_push_noresume; stop_receiver

start_receiver; start_agent
echo "archive_command = '$WF push $WFCONF --agent-socket $T/run/agent.sock %p'" >"$PGDATA/bench.conf"
drain wf_agent; check_wf_archive wf_agent; stop_agent; stop_receiver

if [ -f "$MODULE" ]; then
  cp "$MODULE" "$T/walferry_archive.so"
  start_receiver; start_agent
  printf "archive_command = ''\narchive_library = '%s'\nwalferry_archive.socket = '%s'\n" \
    "$T/walferry_archive.so" "$T/run/agent.sock" >"$PGDATA/bench.conf"
  drain wf_module; check_wf_archive wf_module; stop_agent; stop_receiver
else
  note "archive module not built ($MODULE): skipped"
fi

# ---------- pgBackRest ----------
for mode in sync async; do
  D="$T/pgbr-$mode"
  pgbr_conf "$D/pgbackrest.conf" "$D" "$([ $mode = async ] && echo y || echo n)" "$PGDATA"
  : >"$PGDATA/bench.conf"
  start_pg
  as_pg pgbackrest --config="$D/pgbackrest.conf" --stanza=bench stanza-create >"$T/pgbr.log" 2>&1 \
    || { cat "$T/pgbr.log" >&2; fail "pgbackrest stanza-create"; }
  stop_pg
  echo "archive_command = 'pgbackrest --config=$D/pgbackrest.conf --stanza=bench archive-push %p'" >"$PGDATA/bench.conf"
  drain "pgbr_$mode"
  n=$(find "$D/repo/archive" -name '*.zst' | wc -l)
  [ "$n" -ge "$NSEG" ] || fail "pgbackrest $mode archived $n of $NSEG"
done

# ---------- rsync over ssh ----------
if [ -z "${SKIP_SSH:-}" ]; then
  SSHD=$T/ssh
  mkdir -p "$T/rsync-dst"
  start_loopback_sshd "$SSHD"
  chown "$WF_PG_USER" "$SSHD/client_key"; chmod 0600 "$SSHD/client_key"
  echo "archive_command = 'rsync -a -e \"$SSH\" %p root@127.0.0.1:$T/rsync-dst/%f'" >"$PGDATA/bench.conf"
  drain rsync_ssh "$RSYNC_CAP_S"
fi

# ---------- report ----------
echo
echo "archiving $NSEG real 16 MiB WAL segments, driven by PostgreSQL 15's archiver ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-17s %9s %9s %9s %10s %10s\n' config segments seconds seg/s vs_pgbr_sync vs_pgbr_async
ORDER="floor_true floor_cp wf_push wf_push_noresume wf_agent wf_module pgbr_sync pgbr_async rsync_ssh"
rate() { echo "${COUNT[$1]} / ${SECS[$1]}" | bc -l; }
: >"$T/chart.dat"
for k in $ORDER; do
  [ -n "${SECS[$k]:-}" ] || continue
  r=$(rate "$k")
  printf '%-17s %9d %9.2f %9.1f %9.2fx %9.2fx\n' "$k" "${COUNT[$k]}" "${SECS[$k]}" "$r" \
    "$(echo "$r / $(rate pgbr_sync)" | bc -l)" "$(echo "$r / $(rate pgbr_async)" | bc -l)"
  printf '%s %.2f\n' "$k" "$r" >>"$T/chart.dat"
done
if [ -n "${CHART:-}" ] && command -v gnuplot >/dev/null; then
  gnuplot <<GP
set terminal pngcairo size 1000,460 noenhanced
set xtics rotate by -25
set output '$CHART'
set title "Archiving $NSEG real WAL segments, PostgreSQL 15 archiver ($(nproc) cores): segments/s"
set style fill solid 0.8
set boxwidth 0.6
set yrange [0:*]
set grid ytics
unset key
plot '$T/chart.dat' using 0:2:xtic(1) with boxes lc rgb '#3a7bd5', '' using 0:2:(sprintf('%.1f', \$2)) with labels offset 0,0.7
GP
  note "chart: $CHART"
fi
