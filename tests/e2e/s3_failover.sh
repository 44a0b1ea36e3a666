#!/usr/bin/env bash
# A hot standby fed from the bucket alone, through a failover. PostgreSQL 15
# archives through a gateway receiver (`serve --store-url s3://...`) into a
# real Ceph radosgw (tests/tools/ceph_rgw.sh); every standby restores with
# `walferry get --from s3://...`, never from a receiver:
#   - the primary dies with the archive's last WAL ending inside segment C;
#     standby 1 is promoted there (timeline 2 begins inside C, so 00000002<C>
#     starts with timeline-1 pages) and archives 00000002.history and its
#     timeline-2 segments through the gateway;
#   - the gateway is stopped: nothing but the bucket is left;
#   - standby 2 follows timeline 2 from the bucket alone, and a fresh node
#     from the base backup recovers 1 -> 2 from the bucket alone;
#   - every archived file the servers still have is byte-identical to the
#     bucket's copy, `verify` against the bucket is clean, and no `get` said
#     anything in the server logs (missing-file probes are silent).
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/failover.sh"
. "$(dirname "$0")/lib/ceph.sh"
ensure_pg_user
# Exported (ceph_up): PostgreSQL's archive_command and restore_command inherit them.
ceph_up 1
URL=s3://walferry-e2e/failover

fo_receiver --store-url "$URL" --s3-endpoint "$S3_ENDPOINT" --s3-part-size 5
GW_PID=$(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | head -1 | cut -d= -f2)
[ -n "$GW_PID" ] || fail "no pid for the gateway on port $RPORT"
GET="$WF get %f %p --from $URL --cluster main"
# The bucket's copy of NAME, decompressed (get verifies it on the way).
fo_stored() {
  rm -f "$T/stored.tmp"
  "$WF" get "$1" "$T/stored.tmp" --from "$URL" --cluster main --prefetch 0 2>/dev/null || return 1
  cat "$T/stored.tmp"
}

PPORT=$(free_port); S1PORT=$(free_port); S2PORT=$(free_port); S3PORT=$(free_port)
P=$(fo_primary prim "$PPORT")
pg_start "$P" "$PPORT"
psql_at "$PPORT" "create table t(tl int, note text); insert into t values (1, 'before base')"
fo_base "$T/base" "$PPORT"
psql_at "$PPORT" "insert into t values (1, 'after base')"
fo_switch_archived "$PPORT"

STANDBY_CONF=("restore_command = '$GET'" "archive_mode = on" "archive_command = '$PUSH'"
              "wal_retrieve_retry_interval = '200ms'")
S1=$(fo_standby s1 "$T/base" "$S1PORT" "${STANDBY_CONF[@]}")
S2=$(fo_standby s2 "$T/base" "$S2PORT" "restore_command = '$GET'" "wal_retrieve_retry_interval = '200ms'")
pg_start "$S1" "$S1PORT"
pg_start "$S2" "$S2PORT"
fo_wait_sql "$S1PORT" "select count(*) from t" 2

fo_die_inside_segment "$PPORT" "$P"
note "primary gone; the bucket's WAL ends inside $C"
fo_wait_sql "$S1PORT" "select count(*) from t" 3
fo_wait_sql "$S2PORT" "select count(*) from t" 3

as_pg "$PGBIN/pg_ctl" -D "$S1" -w promote >/dev/null || fail "promote s1"
fo_wait_sql "$S1PORT" "select pg_is_in_recovery()" f
psql_at "$S1PORT" "insert into t values (2, 'after promotion')"
TL2C="00000002${C:8}"
# Standby 2 read timeline 1 up to C+2 (the record that never completed): it
# gives that record up only when timeline 2 reaches C+2 too. Three segments.
for i in 1 2 3; do
  psql_at "$S1PORT" "insert into t values (2, 'filler $i')"
  fo_switch_archived "$S1PORT"
done
psql_at "$S1PORT" "delete from t where note like 'filler%'; insert into t values (2, 'last on tl2')"
fo_switch_archived "$S1PORT"
fo_stored 00000002.history >/dev/null || fail "00000002.history not in the bucket"
fo_stored "$TL2C" >"$T/tl2c" || fail "$TL2C (first segment of timeline 2) not in the bucket"
[ "$(fo_first_page_tli <"$T/tl2c")" = 1 ] || fail "$TL2C does not start with a timeline-1 page (promotion not mid-segment?)"
# No 00000001<C>.partial here: s1 restored C from the archive, so C has a
# .done and PostgreSQL archives no .partial for it (CleanupAfterArchiveRecovery:
# only a segment that is neither .ready nor .done is renamed .partial).
! ls "$S1/pg_wal/"*.partial >/dev/null 2>&1 || fail "s1 made a .partial of a segment it restored"
[ "$(psql_at "$S1PORT" "select failed_count from pg_stat_archiver")" = 0 ] || fail "s1 archive failures"

# From here on there is no receiver: only the bucket.
kill "$GW_PID"
for _ in $(seq 1 100); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.1; done
! kill -0 "$GW_PID" 2>/dev/null || fail "gateway $GW_PID did not stop"
note "gateway stopped; standbys restore from the bucket alone"

fo_wait_sql "$S2PORT" "select string_agg(note, ',' order by tl, note) from t" \
  "after base,before base,last archived,after promotion,last on tl2"
S3=$(fo_standby s3 "$T/base" "$S3PORT" "restore_command = '$GET'" "wal_retrieve_retry_interval = '200ms'")
pg_start "$S3" "$S3PORT"
fo_wait_sql "$S3PORT" "select string_agg(note, ',' order by tl, note) from t" \
  "after base,before base,last archived,after promotion,last on tl2"
# It found timeline 2 through the history file and read 1 -> 2 at C.
grep -q "restored log file \"00000002.history\" from archive" "$S3.log" || fail "s3 never restored 00000002.history"
grep -q "restored log file \"$TL2C\" from archive" "$S3.log" || fail "s3 never restored $TL2C"

n=0
for d in "$P" "$S1"; do n=$((n + $(fo_compare_wal "$d"))); done
[ "$n" -ge 6 ] || fail "only $n archived files could be compared with a server's copy"
"$WF" verify --from "$URL" --cluster main >"$T/verify.out" 2>&1 || fail "verify against the bucket: $(cat "$T/verify.out")"
for f in "$S2.log" "$S3.log"; do
  ! grep -n "walferry" "$f" | grep -v "restore_command" | head -3 | grep . || fail "walferry said something in $f"
done
note "s3_failover: ok ($n archived files compared with the bucket's copies)"
