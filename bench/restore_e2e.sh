#!/usr/bin/env bash
# restore_command throughput: NSEG (default 500; WF_SEGMENTS or the first
# argument) real WAL segments restored one call at a time, in order, as a
# standby catching up calls restore_command:
#   cp_raw          cp from a local raw archive (the floor)
#   wf_get          walferry get --prefetch 0 from a local walferry archive (zstd store)
#   wf_get_prefetch walferry get (default prefetch: 8 ahead, cache outside PGDATA)
#   pgbr_get        pgbackrest archive-get (synchronous)
#   pgbr_get_async  pgbackrest archive-get with archive-async=y process-max=2
# The calls run back to back (no replay in between), which gives read-ahead the
# least time to work: a conservative figure for prefetch. Prints seconds,
# segments/s, ratios, and the median latency of one call. Then the latency of
# a prefetched hit alone: for HITS (default 15) segments, wait until the
# worker has the next segment in the cache and is idle, then time one `get`
# (wall ms, median).
# WALFERRY_BIN_BEFORE=other/walferry adds that binary's prefetch run and hit
# latency side by side (e.g. the build before a change).
# Usage: WALFERRY_BIN=build/cli/walferry bench/restore_e2e.sh [NSEG]    (NSEG=20: the CI-sized run)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/lib/pgbackrest.sh"
NSEG=${1:-${WF_SEGMENTS:-500}}
HITS=${HITS:-15}
BEFORE=${WALFERRY_BIN_BEFORE:-}
ensure_pg_user

note "generating $NSEG real WAL segments with pgbench"
PGDATA=$(pg_init bench)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c wal_keep_size=16GB -c max_wal_size=16GB -c checkpoint_timeout=1h
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s $((NSEG / 4 + 2)) postgres >"$T/pgbench.log" 2>&1
# Segment number over the whole LSN range (log id * segments per id + segment): the
# low 8 digits alone wrap at 256 for 16 MiB segments.
segno() { psql_at "$PGPORT" "select ('x' || substr(f, 9, 8))::bit(32)::bigint * 256 + ('x' || substr(f, 17, 8))::bit(32)::bigint from pg_walfile_name(pg_current_wal_lsn()) f"; }
while [ "$(segno)" -le "$((NSEG + 2))" ]; do
  psql_at "$PGPORT" "insert into pgbench_history select (random()*100)::int, (random()*10)::int, g, (random()*10000)::int, now(), substr(md5(g::text), 1, 22) from generate_series(1, 300000) g" >/dev/null
done
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
mkdir -p "$T/raw"
ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -n "$NSEG" >"$T/segs"
while read -r s; do cp "$PGDATA/pg_wal/$s" "$T/raw/"; done <"$T/segs"
share_scratch

# ---------- fill the archives ----------
note "filling a walferry archive and a pgBackRest repository"
"$WF" tls init "$T/tls" --cluster main >/dev/null
WPORT=$(free_port)
"$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>"$T/serve.log" &
WF_PIDS+=("$!")
wait_port "$WPORT"
while read -r s; do "$WF" push --to "127.0.0.1:$WPORT" --tls-dir "$T/tls" --cluster main "$T/raw/$s"; done <"$T/segs"
PGBR="$T/pgbr"
for mode in n y; do pgbr_conf "$PGBR/pgbackrest-$mode.conf" "$PGBR" "$mode" "$PGDATA"; done
as_pg pgbackrest --config="$PGBR/pgbackrest-n.conf" --stanza=bench stanza-create >"$T/pgbr.log" 2>&1 \
  || { cat "$T/pgbr.log" >&2; fail "pgbackrest stanza-create"; }
while read -r s; do as_pg pgbackrest --config="$PGBR/pgbackrest-n.conf" --stanza=bench archive-push "$T/raw/$s"; done <"$T/segs"

# ---------- restore, one call per segment, as the startup process does ----------
R="$T/standby"
mkdir -p "$R/pg_wal" "$T/cache"
share_scratch
# pgBackRest's archive-get must run in the data directory named by pg1-path.
mkdir -p "$R/global"
cp "$PGDATA/global/pg_control" "$R/global/"; cp "$PGDATA/PG_VERSION" "$R/"
for mode in n y; do pgbr_conf "$PGBR/get-$mode.conf" "$PGBR" "$mode" "$R"; done
share_scratch
declare -A SECS MED
run() {  # NAME CMD: "CMD SEG pg_wal/RECOVERYXLOG" per segment, in $R, as the PostgreSQL user, one process loop
  local name=$1 cmd=$2
  cat >"$T/run-$name.sh" <<SH
set -e
cd '$R'
export XDG_CACHE_HOME='$T/cache'
t0=\$(date +%s%N)
while read -r s; do
  a=\$(date +%s%N)
  $cmd "\$s" pg_wal/RECOVERYXLOG
  b=\$(date +%s%N)
  echo \$(((b - a) / 1000)) >>'$T/lat-$name'
  cmp -s pg_wal/RECOVERYXLOG '$T/raw/'"\$s" || { echo "$name restored a different \$s" >&2; exit 1; }
  rm -f pg_wal/RECOVERYXLOG
done <'$T/segs'
t1=\$(date +%s%N)
echo \$(((t1 - t0) / 1000)) >'$T/total-$name'
SH
  : >"$T/lat-$name"
  share_scratch
  as_pg bash "$T/run-$name.sh" || fail "$name failed"
  SECS[$name]=$(echo "$(cat "$T/total-$name") / 1000000" | bc -l)
  MED[$name]=$(sort -n "$T/lat-$name" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  note "$name: ${SECS[$name]} s, median call ${MED[$name]} us"
}
run cp_raw "cp_one() { cp '$T/raw/'\$1 \$2; }; cp_one"
run wf_get "'$WF' get --from '$T/wf-root' --cluster main --prefetch 0"
run wf_get_prefetch "'$WF' get --from '$T/wf-root' --cluster main"
[ -n "$BEFORE" ] && run wf_get_prefetch_before "'$BEFORE' get --from '$T/wf-root' --cluster main"
run pgbr_get "pgbackrest --config='$PGBR/get-n.conf' --stanza=bench archive-get"
run pgbr_get_async "pgbackrest --config='$PGBR/get-y.conf' --stanza=bench archive-get"

# ---------- the latency of a prefetched hit alone ----------
# Each binary has its own cache; per segment, the binaries take turns (so a
# change in the machine's load hits both alike).
declare -A HIT_MS
HIT_BINS=(wf_get_prefetch)
declare -A HIT_BIN=([wf_get_prefetch]=$WF)
[ -n "$BEFORE" ] && { HIT_BINS+=(wf_get_prefetch_before); HIT_BIN[wf_get_prefetch_before]=$BEFORE; }
hit_get() { (cd "$R" && as_pg "${HIT_BIN[$1]}" get --from "$T/wf-root" --cluster main --prefetch-dir "$T/hitcache-$1" "$2" pg_wal/RECOVERYXLOG); }
for name in "${HIT_BINS[@]}"; do
  mkdir -p "$T/hitcache-$name"; : >"$T/hit-$name"
done
share_scratch
for name in "${HIT_BINS[@]}"; do hit_get "$name" "$(sed -n 1p "$T/segs")"; rm -f "$R/pg_wal/RECOVERYXLOG"; done
for s in $(sed -n "2,$((HITS + 1))p" "$T/segs"); do
  for name in "${HIT_BINS[@]}"; do
    dir="$T/hitcache-$name"
    for _ in $(seq 1 200); do  # the segment cached, no worker running
      [ -f "$dir/$s" ] && as_pg flock -n "$dir/.lock" true && break
      sleep 0.05
    done
    [ -f "$dir/$s" ] || fail "$name: $s never reached the prefetch cache"
    a=$(date +%s%N)
    hit_get "$name" "$s"
    b=$(date +%s%N)
    echo $(((b - a) / 1000)) >>"$T/hit-$name"
    [ -f "$dir/$s" ] && fail "$name: $s was not taken from the cache"
    cmp -s "$R/pg_wal/RECOVERYXLOG" "$T/raw/$s" || fail "$name: hit restored a different $s"
    rm -f "$R/pg_wal/RECOVERYXLOG"
  done
done
for name in "${HIT_BINS[@]}"; do
  HIT_MS[$name]=$(sort -n "$T/hit-$name" | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)] / 1000}')
  note "$name: prefetched hit median ${HIT_MS[$name]} ms over $HITS hits"
done

echo
echo "restore_command: $NSEG real 16 MiB WAL segments, one call each, back to back ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-22s %9s %9s %14s %16s\n' tool seconds seg/s median_call_ms vs_pgbr_get_async
for k in cp_raw wf_get wf_get_prefetch $([ -n "$BEFORE" ] && echo wf_get_prefetch_before) pgbr_get pgbr_get_async; do
  s=${SECS[$k]}
  printf '%-22s %9.2f %9.1f %14.1f %15.2fx\n' "$k" "$s" "$(echo "$NSEG / $s" | bc -l)" \
    "$(echo "${MED[$k]} / 1000" | bc -l)" "$(echo "${SECS[pgbr_get_async]} / $s" | bc -l)"
done
echo "floor: walferry get with prefetch takes $(printf '%.2f' "$(echo "${SECS[wf_get_prefetch]} / ${SECS[cp_raw]}" | bc -l)")x the time of cp from a local raw archive"
for k in "${!HIT_MS[@]}"; do echo "prefetched hit, median of $HITS: $k ${HIT_MS[$k]} ms (one call, cache ready, no worker running)"; done
