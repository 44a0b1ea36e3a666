#!/usr/bin/env bash
# Split brain through one archive: two standbys restored from the same base
# backup are both promoted onto timeline 2 (the second one could not see the
# first one's 00000002.history) and write different data. Their history files
# are identical (accepted); their first timeline-2 segments are not: the
# second is refused (exit 4, PostgreSQL keeps retrying), the original stays
# byte-identical to the first server's copy, the newcomer is kept once in the
# cluster's quarantine, and the error, `status` and `verify` name where the
# copies differ and the likely cause. A different 00000002.history under the
# same name is refused the same way.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/failover.sh"
ensure_pg_user
fo_receiver
PPORT=$(free_port); APORT=$(free_port); BPORT=$(free_port)

P=$(fo_primary prim "$PPORT")
pg_start "$P" "$PPORT"
psql_at "$PPORT" "create table t(who text)"
fo_base "$T/base" "$PPORT"
psql_at "$PPORT" "insert into t values ('primary')"
fo_switch_archived "$PPORT"
STANDBY_CONF=("restore_command = '$GET'" "archive_mode = on" "archive_command = '$PUSH'"
              "wal_retrieve_retry_interval = '200ms'")
A=$(fo_standby a "$T/base" "$APORT" "${STANDBY_CONF[@]}")
B=$(fo_standby b "$T/base" "$BPORT" "${STANDBY_CONF[@]}" "recovery_target_timeline = 'current'")
pg_start "$A" "$APORT"
pg_start "$B" "$BPORT"
fo_wait_sql "$APORT" "select count(*) from t" 1
fo_wait_sql "$BPORT" "select count(*) from t" 1
pg_stop "$P"
sleep 1  # both replay the primary's last archived segment
# B cannot see the archive when it promotes (as in a network split): it will
# pick timeline 2 too.
psql_at "$BPORT" "alter system set restore_command = 'false'" >/dev/null
psql_at "$BPORT" "select pg_reload_conf()" >/dev/null

# A is promoted to timeline 2 and archives.
as_pg "$PGBIN/pg_ctl" -D "$A" -w promote >/dev/null || fail "promote a"
fo_wait_sql "$APORT" "select pg_is_in_recovery()" f
psql_at "$APORT" "insert into t select 'a' from generate_series(1, 1000)"
SEG=$(psql_at "$APORT" "select pg_walfile_name(pg_current_wal_lsn()) from (select 1) s")
fo_switch_archived "$APORT"
fo_stored "$SEG" >/dev/null || fail "$SEG not archived"
as_pg "$PGBIN/pg_ctl" -D "$B" -w promote >/dev/null || fail "promote b"
fo_wait_sql "$BPORT" "select pg_is_in_recovery()" f
[ -f "$B/pg_wal/00000002.history" ] || fail "b did not choose timeline 2"
cmp -s "$A/pg_wal/00000002.history" "$B/pg_wal/00000002.history" || fail "histories differ; the test assumes one switch point"
psql_at "$BPORT" "insert into t select 'b' from generate_series(1, 1000)"
psql_at "$BPORT" "select pg_switch_wal()" >/dev/null
fo_wait_sql "$BPORT" "select failed_count > 0 and last_failed_wal = '$SEG' from pg_stat_archiver" t

# Refused; the original is A's, byte for byte; the newcomer is in quarantine.
fo_stored "$SEG" | cmp -s - "$A/pg_wal/$SEG" || fail "the archived $SEG is no longer A's"
err=$(grep -m1 "$SEG already archived with different content" "$B.log") || fail "no exists-different error in b's log"
for want in "original kept" "first difference at byte" "(LSN 0/" "XXH3-128 archive " "newcomer " \
            "system identifier archive" "likely cause: two servers wrote timeline 2" "quarantine/"; do
  grep -qF "$want" <<<"$err" || fail "error lacks '$want': $err"
done
ls "$ROOT"/main/quarantine/"$SEG".* >/dev/null || fail "nothing in quarantine"
sleep 2  # PostgreSQL retries: still one quarantined copy
[ "$(ls "$ROOT"/main/quarantine | grep -vc '\.info$')" = 1 ] || fail "quarantine: $(ls "$ROOT/main/quarantine")"
QF=$(ls "$ROOT"/main/quarantine | grep -v '\.info$')
zstd -q -d -c "$ROOT/main/quarantine/$QF" | cmp -s - "$B/pg_wal/$SEG" || fail "quarantined copy is not b's $SEG"
grep -q "have name=$SEG different" "$T/serve.log" || fail "HAVE did not say different"
grep -q "00000002.history" "$T/serve.log" || true

# A different history file under the same name: refused, quarantined, cause named.
printf '1\t0/9000000\tsomewhere else\n' >"$T/00000002.history"
set +e
out=$("$WF" push "$T/00000002.history" --to 127.0.0.1:"$RPORT" --cluster main --insecure-loopback 2>&1); rc=$?
set -e
[ "$rc" = 4 ] || fail "different 00000002.history: exit $rc ($out)"
grep -q "likely cause: two promotions chose timeline 00000002" <<<"$out" || fail "history cause: $out"
fo_stored 00000002.history | cmp -s - "$A/pg_wal/00000002.history" || fail "00000002.history changed"

# status and verify show the quarantine; verify exits 3.
"$WF" status --root "$ROOT" >"$T/status.out" 2>&1 || fail "status: $(cat "$T/status.out")"
grep -q "quarantined: quarantine/$SEG\..*likely cause" "$T/status.out" || fail "status: $(cat "$T/status.out")"
set +e
"$WF" verify --root "$ROOT" >"$T/verify.out" 2>&1; rc=$?
set -e
[ "$rc" = 3 ] || fail "verify exit $rc: $(cat "$T/verify.out")"
grep -q "quarantined quarantine/$SEG\." "$T/verify.out" || fail "verify: $(cat "$T/verify.out")"
grep -q "quarantined quarantine/00000002.history\." "$T/verify.out" || fail "verify: $(cat "$T/verify.out")"
note "failover_conflict: ok ($err)"
