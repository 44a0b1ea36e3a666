#!/usr/bin/env bash
# A standby catching up from the archive, as an operator meets it: a base
# backup of a PostgreSQL 15 primary, then NSEG (default 200; first argument or
# WF_SEGMENTS) real WAL segments written by pgbench-style inserts and archived.
# For each restore_command a fresh copy of the base backup starts as a hot
# standby (standby.signal, fsync on) and the clock runs from its start until
# it has replayed to the primary's last LSN (pg_last_wal_replay_lsn):
#   cp_raw           cp from a local raw archive (the floor: replay alone)
#   wf_get           walferry get (default prefetch: 8 ahead, cache outside PGDATA)
#   wf_get_noprefetch  walferry get --prefetch 0
#   pgbr_get_async   pgbackrest archive-get, archive-async=y process-max=2
#   pgbr_get         pgbackrest archive-get (synchronous)
# Every standby's data is then compared with the primary's (a checksum of a
# table), so a fast wrong restore cannot win.
# Prints seconds, the ratio to the floor (how much of the time is restore,
# not replay) and to pgBackRest.
# Usage: WALFERRY_BIN=build/cli/walferry bench/replay_e2e.sh [NSEG]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/lib/pgbackrest.sh"
NSEG=${1:-${WF_SEGMENTS:-200}}
TOOLS=${WF_REPLAY_TOOLS:-cp_raw wf_get wf_get_noprefetch pgbr_get_async pgbr_get}
ensure_pg_user
command -v pgbackrest >/dev/null || TOOLS=$(tr ' ' '\n' <<<"$TOOLS" | grep -v pgbr | tr '\n' ' ')

# ---------- primary: raw archive via cp, base backup, then NSEG segments ----------
mkdir -p "$T/raw"
share_scratch
PGDATA=$(pg_init primary)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c wal_level=replica -c archive_mode=on \
  "-c archive_command='cp %p $T/raw/%f'" -c max_wal_size=16GB -c checkpoint_timeout=1h
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 10 postgres >"$T/pgbench.log" 2>&1
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PGPORT" -U postgres -D "$T/base" -X none -c fast \
  || fail "pg_basebackup"
start=$(psql_at "$PGPORT" "select pg_current_wal_lsn()")
note "base backup at $start; writing $NSEG segments of WAL"
while [ "$(psql_at "$PGPORT" "select floor((pg_current_wal_lsn() - '$start'::pg_lsn) / 16777216)::bigint")" -lt "$NSEG" ]; do
  psql_at "$PGPORT" "insert into pgbench_history select (random()*100)::int, (random()*10)::int, g, (random()*10000)::int, now(), substr(md5(g::text), 1, 22) from generate_series(1, 300000) g" >/dev/null
done
END_LSN=$(psql_at "$PGPORT" "select pg_current_wal_lsn()")
WANT_SUM=$(psql_at "$PGPORT" "select count(*) || ':' || sum(hashtext(filler || aid || delta)) from pgbench_history")
last=$(psql_at "$PGPORT" "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 1200); do
  [ "$(psql_at "$PGPORT" "select coalesce(last_archived_wal, '') >= '$last' from pg_stat_archiver")" = t ] && break
  sleep 0.1
done
[ -f "$T/raw/$last" ] || fail "the primary did not archive $last"
n_files=$(ls "$T/raw" | wc -l)
note "$n_files files archived up to $last, end LSN $END_LSN"

# ---------- the same files into walferry and pgBackRest ----------
"$WF" tls init "$T/tls" --cluster main >/dev/null
WPORT=$(free_port)
"$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>"$T/serve.log" &
WF_PIDS+=("$!")
wait_port "$WPORT"
for f in $(ls "$T/raw" | sort); do
  "$WF" push --to "127.0.0.1:$WPORT" --tls-dir "$T/tls" --cluster main "$T/raw/$f" || fail "push $f"
done
if grep -q pgbr <<<"$TOOLS"; then
  PGBR="$T/pgbr"
  for mode in n y; do pgbr_conf "$PGBR/pgbackrest-$mode.conf" "$PGBR" "$mode" "$PGDATA"; done
  as_pg pgbackrest --config="$PGBR/pgbackrest-n.conf" --stanza=bench stanza-create >"$T/pgbr.log" 2>&1 \
    || { cat "$T/pgbr.log" >&2; fail "pgbackrest stanza-create"; }
  for f in $(ls "$T/raw" | sort); do
    as_pg pgbackrest --config="$PGBR/pgbackrest-n.conf" --stanza=bench archive-push "$T/raw/$f" \
      || fail "pgbackrest archive-push $f"
  done
fi
pg_stop "$PGDATA"

# ---------- one standby per restore_command ----------
declare -A SECS
replay() {  # NAME RESTORE_COMMAND [PGBACKREST_ASYNC(n|y)]
  local name=$1 cmd=$2 dir="$T/standby-$1" port t0 t1 lsn=""
  rm -rf "$dir"; cp -a "$T/base" "$dir"
  touch "$dir/standby.signal"
  if [ -n "${3:-}" ]; then  # pgBackRest finds the standby through pg1-path
    pgbr_conf "$PGBR/get-$name.conf" "$PGBR" "$3" "$dir"
  fi
  echo "restore_command = '$cmd'" >>"$dir/postgresql.auto.conf"
  share_scratch
  port=$(free_port)
  t0=$(date +%s.%N)
  pg_start "$dir" "$port" -c fsync=on -c hot_standby=on -c archive_mode=off
  for _ in $(seq 1 36000); do
    lsn=$(psql_at "$port" "select pg_last_wal_replay_lsn() >= '$END_LSN'::pg_lsn" 2>/dev/null || true)
    [ "$lsn" = t ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  [ "$lsn" = t ] || fail "$name: the standby did not reach $END_LSN"
  local got; got=$(psql_at "$port" "select count(*) || ':' || sum(hashtext(filler || aid || delta)) from pgbench_history")
  [ "$got" = "$WANT_SUM" ] || fail "$name: the standby's data differs from the primary's ($got vs $WANT_SUM)"
  pg_stop "$dir"
  rm -rf "$dir"
  SECS[$name]=$(echo "$t1 - $t0" | bc -l)
  note "$name: replayed $NSEG segments in ${SECS[$name]} s"
}
mkdir -p "$T/cache"; share_scratch
for tool in $TOOLS; do
  case $tool in
    cp_raw) replay cp_raw "cp $T/raw/%f %p" ;;
    wf_get) replay wf_get "XDG_CACHE_HOME=$T/cache $WF get --from $T/wf-root --cluster main %f %p" ;;
    wf_get_noprefetch) replay wf_get_noprefetch "$WF get --from $T/wf-root --cluster main --prefetch 0 %f %p" ;;
    pgbr_get_async) replay pgbr_get_async "pgbackrest --config=$T/pgbr/get-pgbr_get_async.conf --stanza=bench archive-get %f \"%p\"" y ;;
    pgbr_get) replay pgbr_get "pgbackrest --config=$T/pgbr/get-pgbr_get.conf --stanza=bench archive-get %f \"%p\"" n ;;
    *) fail "unknown tool $tool" ;;
  esac
done

# ---------- report ----------
echo
echo "a hot standby replaying $NSEG real 16 MiB WAL segments from the archive ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-20s %9s %9s %10s %16s\n' restore_command seconds seg/s vs_cp_raw vs_pgbr_get_async
for k in $TOOLS; do
  s=${SECS[$k]}
  printf '%-20s %9.2f %9.1f %9.2fx %15s\n' "$k" "$s" "$(echo "$NSEG / $s" | bc -l)" \
    "$(echo "$s / ${SECS[cp_raw]:-$s}" | bc -l)" \
    "$([ -n "${SECS[pgbr_get_async]:-}" ] && printf '%.2fx' "$(echo "${SECS[pgbr_get_async]} / $s" | bc -l)" || echo -)"
done
echo "vs_cp_raw: the standby's time over replay from a local cp (1.00x = restore never the bottleneck)"
