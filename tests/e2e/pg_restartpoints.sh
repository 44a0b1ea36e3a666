#!/usr/bin/env bash
# Long archive recovery with many small segments (initdb --wal-segsize=1):
# a primary writes several hundred 1 MiB segments with frequent checkpoints;
# an archive-only standby replays them through `walferry get` while making
# restartpoints, each running archive_cleanup_command = 'walferry cleanup %r'.
# Nothing goes missing (the standby has every row; restarted, it recovers
# from its last restartpoint out of what cleanup left), and cleanup removed
# exactly the segments older than the last restartpoint's redo segment.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/failover.sh"
ensure_pg_user
fo_receiver
PPORT=$(free_port); SPORT=$(free_port)
NSEG=${WF_RESTARTPOINT_SEGMENTS:-300}
P=$(fo_primary prim "$PPORT" --wal-segsize=1)
fo_conf "$P" "max_wal_size = '8MB'" "min_wal_size = '2MB'" "wal_keep_size = 0" "checkpoint_timeout = '30s'"
pg_start "$P" "$PPORT"
psql_at "$PPORT" "create table t(i int, pad text)"
fo_base "$T/base" "$PPORT"
CLEANUP="$WF cleanup %r --root $ROOT --cluster main"
S=$(fo_standby s "$T/base" "$SPORT" "restore_command = '$GET'" "archive_cleanup_command = '$CLEANUP'" \
    "wal_retrieve_retry_interval = '200ms'" "max_wal_size = '8MB'" "min_wal_size = '2MB'" "checkpoint_timeout = '30s'")
pg_start "$S" "$SPORT"

segno() { psql_at "$PPORT" "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 17, 8))::bit(32)::int"; }
START=$(segno)
while [ "$(( $(segno) - START ))" -lt "$NSEG" ]; do
  psql_at "$PPORT" "insert into t select g, repeat('x', 200) from generate_series(1, 50000) g"
done
ROWS=$(psql_at "$PPORT" "select count(*) from t")
fo_switch_archived "$PPORT"
note "primary wrote $(( $(segno) - START )) segments of 1 MiB, $ROWS rows"
fo_wait_sql "$SPORT" "select count(*) from t" "$ROWS"
psql_at "$SPORT" "checkpoint" >/dev/null  # a last restartpoint (and cleanup)
RP=$(grep -c "restartpoint complete" "$S.log" || true)
[ "$RP" -ge 2 ] || fail "only $RP restartpoints during recovery"
LSN=$(psql_at "$SPORT" "select redo_lsn from pg_control_checkpoint()")
REDO=$(python3 -c 'import sys; hi, lo = (int(x, 16) for x in sys.argv[1].split("/")); n = ((hi << 32) | lo) >> 20; print("00000001%08X%08X" % (n // 4096, n % 4096))' "$LSN")
# Exactly what is older than the restart point's segment is gone.
left_old=$(ls "$ROOT/main/wal" | sed 's/\.zst$//' | grep -E '^[0-9A-F]{24}$' | awk -v r="$REDO" '$0 < r' | head -3)
[ -z "$left_old" ] || fail "cleanup left segments older than the restart point $REDO: $left_old"
fo_stored "$REDO" >/dev/null || fail "cleanup removed the restart point's own segment $REDO"
kept=$(ls "$ROOT/main/wal" | grep -cE '^[0-9A-F]{24}(\.zst)?$')
note "$RP restartpoints; archive keeps $kept segments from $REDO on"
# Restarted, the standby recovers from its restartpoint out of what is left.
psql_at "$PPORT" "insert into t values (-1, 'after restart')"
fo_switch_archived "$PPORT"
pg_stop "$S"
pg_start "$S" "$SPORT"
fo_wait_sql "$SPORT" "select count(*) from t" "$((ROWS + 1))"
grep -n "walferry" "$S.log" | grep -v "restore_command\|archive_cleanup_command" | head -3 | grep . && fail "walferry said something in the standby log"
note "pg_restartpoints: ok"
