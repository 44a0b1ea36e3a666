#!/usr/bin/env bash
# Through a failover and back, with standbys fed by the walferry archive alone:
#   primary (tl 1) archives with `walferry push`; two standbys restore with
#   `walferry get`; the primary dies with the archive's last WAL ending in the
#   middle of a segment; standby 1 is promoted there (timeline 2 begins inside
#   segment C, so 00000002<C> starts with timeline-1 pages), keeps archiving
#   (00000002.history, its first tl-2 segment); standby 2 follows timeline 2
#   through the archive alone and is promoted in turn (timeline 3); a fresh
#   node from the base backup recovers 1 -> 2 -> 3; a PITR node stops at a
#   restore point inside timeline 2's first segment. Every archived file is
#   compared with the servers' own copies; `verify` finds nothing wrong; no
#   `get` says anything in the server logs (missing-file probes are silent).
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/failover.sh"
ensure_pg_user
fo_receiver
PPORT=$(free_port); S1PORT=$(free_port); S2PORT=$(free_port); S3PORT=$(free_port); RPPORT=$(free_port)

P=$(fo_primary prim "$PPORT")
pg_start "$P" "$PPORT"
psql_at "$PPORT" "create table t(tl int, note text); insert into t values (1, 'before base')"
fo_base "$T/base" "$PPORT"
psql_at "$PPORT" "insert into t values (1, 'after base')"
fo_switch_archived "$PPORT"
ls "$ROOT"/main/wal/*.backup* >/dev/null 2>&1 || fail "no backup history file (.backup) archived"

STANDBY_CONF=("restore_command = '$GET'" "archive_mode = on" "archive_command = '$PUSH'"
              "wal_retrieve_retry_interval = '200ms'")
S1=$(fo_standby s1 "$T/base" "$S1PORT" "${STANDBY_CONF[@]}")
S2=$(fo_standby s2 "$T/base" "$S2PORT" "${STANDBY_CONF[@]}")
pg_start "$S1" "$S1PORT"
pg_start "$S2" "$S2PORT"
fo_wait_sql "$S1PORT" "select count(*) from t" 2

fo_die_inside_segment "$PPORT" "$P"
note "primary gone; archive ends inside $C"
fo_wait_sql "$S1PORT" "select count(*) from t" 3
fo_wait_sql "$S2PORT" "select count(*) from t" 3

# Promotion 1: timeline 2 begins inside segment C.
as_pg "$PGBIN/pg_ctl" -D "$S1" -w promote >/dev/null || fail "promote s1"
fo_wait_sql "$S1PORT" "select pg_is_in_recovery()" f
psql_at "$S1PORT" "insert into t values (2, 'after promotion')"
psql_at "$S1PORT" "select pg_create_restore_point('mid_tl2')" >/dev/null
psql_at "$S1PORT" "insert into t values (2, 'after restore point')"
TL2C="00000002${C:8}"
fo_switch_archived "$S1PORT"
# Standby 2 had read timeline 1 past the switch point (the start of the record
# that never completed, up to segment C+2): PostgreSQL's reader gives up on
# that record only when timeline 2 also reaches C+2. Two more segments.
for i in 1 2; do
  psql_at "$S1PORT" "insert into t values (2, 'filler $i')"
  fo_switch_archived "$S1PORT"
done
psql_at "$S1PORT" "delete from t where note like 'filler%'"
fo_switch_archived "$S1PORT"
fo_stored 00000002.history >/dev/null || fail "00000002.history not archived"
fo_stored "$TL2C" >"$T/tl2c" || fail "$TL2C (first segment of timeline 2) not archived"
[ "$(fo_first_page_tli <"$T/tl2c")" = 1 ] || fail "$TL2C does not start with a timeline-1 page (promotion not mid-segment?)"
SWITCH=$(cut -f2 "$S1/pg_wal/00000002.history")
note "timeline 2 begins at $SWITCH inside $C; $TL2C archived"

# Standby 2 follows timeline 2 from the archive alone (it first finds only
# 00000002.history), then is promoted: timeline 3.
fo_wait_sql "$S2PORT" "select count(*) from t where tl = 2" 2
as_pg "$PGBIN/pg_ctl" -D "$S2" -w promote >/dev/null || fail "promote s2"
fo_wait_sql "$S2PORT" "select pg_is_in_recovery()" f
psql_at "$S2PORT" "insert into t values (3, 'after second promotion')"
fo_switch_archived "$S2PORT"
fo_stored 00000003.history >/dev/null || fail "00000003.history not archived"

# A new node from the base backup: 1 -> 2 -> 3 through the archive.
S3=$(fo_standby s3 "$T/base" "$S3PORT" "restore_command = '$GET'" "wal_retrieve_retry_interval = '200ms'")
pg_start "$S3" "$S3PORT"
fo_wait_sql "$S3PORT" "select string_agg(note, ',' order by tl, note) from t" \
  "after base,before base,last archived,after promotion,after restore point,after second promotion"

# PITR into the middle of timeline 2's first segment.
R=$(fo_standby pitr "$T/base" "$RPPORT" "restore_command = '$GET'" "recovery_target_timeline = '2'" \
    "recovery_target_name = 'mid_tl2'" "recovery_target_action = 'promote'")
rm "$R/standby.signal"; touch "$R/recovery.signal"
pg_start "$R" "$RPPORT"
fo_wait_sql "$RPPORT" "select pg_is_in_recovery()" f
[ "$(psql_at "$RPPORT" "select string_agg(note, ',' order by tl, note) from t")" = \
  "after base,before base,last archived,after promotion" ] || fail "PITR node has $(psql_at "$RPPORT" "select * from t")"
grep -q "recovery stopping at restore point \"mid_tl2\"" "$R.log" || fail "PITR did not stop at mid_tl2"

# Every archived file the servers still have is byte-identical; verify is clean.
n=0
for d in "$P" "$S1" "$S2" "$S3"; do n=$((n + $(fo_compare_wal "$d"))); done
[ "$n" -ge 8 ] || fail "only $n archived files could be compared with a server's copy"
"$WF" verify --root "$ROOT" >"$T/verify.out" 2>&1 || fail "verify: $(cat "$T/verify.out")"
for f in "$S1.log" "$S2.log" "$S3.log" "$R.log"; do
  ! grep -n "walferry" "$f" | grep -v "archive_command\|restore_command" | head -3 | grep . \
    || fail "walferry said something in $f"
done
[ "$(psql_at "$S1PORT" "select failed_count from pg_stat_archiver")" = 0 ] || fail "s1 archive failures"
[ "$(psql_at "$S2PORT" "select failed_count from pg_stat_archiver")" = 0 ] || fail "s2 archive failures"
note "failover_archive: ok ($n archived files compared)"
