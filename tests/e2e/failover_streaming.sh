#!/usr/bin/env bash
# Failover of a streaming standby with the walferry archive as fallback, and an
# archive_mode = always standby archiving into the same archive as the primary:
#   - the always-standby re-archives what the primary archived: identical ->
#     exit 0 without shipping it (the receiver logs `have ... identical`);
#   - the primary stops in the middle of a segment; the streaming standby is
#     promoted there and archives the old timeline's last segment as .partial,
#     00000002.history and its first timeline-2 segment (which starts with
#     timeline-1 pages);
#   - `get` of that segment's timeline-1 name exits 1 quietly (never the .partial);
#   - the always-standby follows timeline 2 through the archive;
#   - every archived file equals the servers' own copies; verify is clean.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/failover.sh"
ensure_pg_user
fo_receiver
PPORT=$(free_port); S1PORT=$(free_port); S2PORT=$(free_port)

P=$(fo_primary prim "$PPORT")
pg_start "$P" "$PPORT"
psql_at "$PPORT" "create table t(tl int, note text); insert into t values (1, 'before base')"
fo_base "$T/base" "$PPORT"
conninfo() { echo "primary_conninfo = 'host=127.0.0.1 port=$PPORT user=postgres application_name=$1'"; }
S1=$(fo_standby s1 "$T/base" "$S1PORT" "$(conninfo s1)" "restore_command = '$GET'" "archive_mode = on" \
     "archive_command = '$PUSH'" "wal_retrieve_retry_interval = '200ms'")
S2=$(fo_standby s2 "$T/base" "$S2PORT" "$(conninfo s2)" "restore_command = '$GET'" "archive_mode = always" \
     "archive_command = '$PUSH'" "wal_retrieve_retry_interval = '200ms'")
pg_start "$S1" "$S1PORT"
pg_start "$S2" "$S2PORT"
fo_wait_sql "$PPORT" "select count(*) from pg_stat_replication where state = 'streaming'" 2

# Segments both the primary and the always-standby archive.
for i in 1 2 3; do
  psql_at "$PPORT" "insert into t values (1, 'row $i')"
  fo_switch_archived "$PPORT"
done
LAST=$(psql_at "$PPORT" "select last_archived_wal from pg_stat_archiver")
fo_archived "$S2PORT" "$LAST"
[ "$(psql_at "$S2PORT" "select failed_count from pg_stat_archiver")" = 0 ] \
  || fail "archive_mode=always standby failed to re-archive: $(grep -m3 walferry "$S2.log")"
grep -q "have name=0000000100000000000000.. identical" "$T/serve.log" \
  || fail "no identical re-archive answered by HAVE (serve.log: $(tail -5 "$T/serve.log"))"
# ... and nothing was shipped for them: each such segment has exactly one
# transfer (the first archiver's), never a second one ending "identical".
for seg in $(grep -o "have name=[0-9A-F]* identical" "$T/serve.log" | cut -d= -f2 | cut -d' ' -f1); do
  [ "$(grep -c "name=$seg placed" "$T/serve.log")" = 1 ] || fail "$seg: not placed exactly once"
  ! grep -q "name=$seg identical bytes=" "$T/serve.log" || fail "$seg was shipped again to find it identical"
done
note "re-archived without shipping: $(grep -c "have name=.* identical" "$T/serve.log") segment(s)"

# The primary stops in the middle of a segment, after S1 has streamed all of it.
psql_at "$PPORT" "insert into t values (1, 'streamed only')"
END=$(psql_at "$PPORT" "select pg_current_wal_insert_lsn()")
fo_wait_sql "$S1PORT" "select pg_last_wal_replay_lsn() >= '$END'" t
pg_stop "$P"  # switches to a new segment and writes its shutdown checkpoint there
as_pg "$PGBIN/pg_ctl" -D "$S1" -w promote >/dev/null || fail "promote s1"
fo_wait_sql "$S1PORT" "select pg_is_in_recovery()" f
SWITCH=$(cut -f2 "$S1/pg_wal/00000002.history")
TL2C=$(psql_at "$S1PORT" "select pg_walfile_name('$SWITCH')")
C="00000001${TL2C:8}"
psql_at "$S1PORT" "insert into t values (2, 'after promotion')"
fo_switch_archived "$S1PORT"
note "timeline 2 begins at $SWITCH in $TL2C"
fo_stored "$C.partial" >"$T/partial" || fail "$C.partial not archived: $(ls "$ROOT/main/wal")"
cmp -s "$T/partial" "$S1/pg_wal/$C.partial" || fail "$C.partial differs from the promoted server's"
fo_stored 00000002.history >/dev/null || fail "00000002.history not archived"
fo_stored "$TL2C" >"$T/tl2c" || fail "$TL2C not archived"
[ "$(fo_first_page_tli <"$T/tl2c")" = 1 ] || fail "$TL2C does not start with a timeline-1 page"

# The archive has only $C.partial: get of $C says "not there", quietly.
set +e
err=$("$WF" get "$C" "$T/seg" --from "$ROOT" --prefetch 0 2>&1); rc=$?
set -e
[ "$rc" = 1 ] && [ -z "$err" ] && [ ! -e "$T/seg" ] || fail "get $C (only .partial archived): exit $rc, said '$err'"
"$WF" get "$C.partial" "$T/seg" --from "$ROOT" --prefetch 0 || fail "get $C.partial"
cmp -s "$T/seg" "$S1/pg_wal/$C.partial" || fail "get $C.partial is not byte-identical"

# The always-standby lost its primary; it follows timeline 2 from the archive.
fo_wait_sql "$S2PORT" "select count(*) from t where tl = 2" 1
n=0
for d in "$P" "$S1" "$S2"; do n=$((n + $(fo_compare_wal "$d"))); done
[ "$n" -ge 8 ] || fail "only $n archived files compared"
"$WF" verify --root "$ROOT" >"$T/verify.out" 2>&1 || fail "verify: $(cat "$T/verify.out")"
[ "$(psql_at "$S1PORT" "select failed_count from pg_stat_archiver")" = 0 ] || fail "s1 archive failures"
[ "$(psql_at "$S2PORT" "select failed_count from pg_stat_archiver")" = 0 ] || fail "s2 archive failures"
note "failover_streaming: ok ($n archived files compared)"
