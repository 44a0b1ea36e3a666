#!/usr/bin/env bash
# A base backup taken with the low-level API (pg_backup_start / copy /
# pg_backup_stop(wait_for_archive => true)) while the primary archives with
# `walferry push`: pg_backup_stop returns only when its WAL and the backup
# history file (.backup) are durable in the archive; the operator writes
# backup_label from pg_backup_stop's labelfile; a standby restored from the
# copy with `walferry get` reaches consistency at the backup's end and replays
# to the end of the archive. (pg_basebackup, which writes backup_label itself,
# is what failover_*.sh restore from.)
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/failover.sh"
ensure_pg_user
fo_receiver
PPORT=$(free_port); SPORT=$(free_port)
P=$(fo_primary prim "$PPORT")
pg_start "$P" "$PPORT"
psql_at "$PPORT" "create table t(i int); insert into t select generate_series(1, 10000)"

COPY=$T/copy
mkdir -p "$COPY"; share_scratch
# One session: start, copy the data directory (without pg_wal contents), stop.
cat >"$T/backup.sql" <<SQL
select pg_backup_start('walferry-lowlevel', true);
insert into t select generate_series(10001, 20000);
\! cd $P && tar --exclude=./pg_wal/* --exclude=./postmaster.pid --exclude=./postmaster.opts -cf - . | tar -C $COPY -xf -
\o $T/stop.out
select labelfile, spcmapfile from pg_backup_stop(true);
\o
SQL
share_scratch
as_pg "$PGBIN/psql" -X -q -At -F '|SEP|' -h 127.0.0.1 -p "$PPORT" -U postgres -d postgres -f "$T/backup.sql" >"$T/backup.log" 2>&1 \
  || fail "low-level backup: $(cat "$T/backup.log")"
python3 - "$T/stop.out" "$COPY/backup_label" <<'PY'
import sys
text = open(sys.argv[1]).read()
label = text.split('|SEP|')[0]
open(sys.argv[2], 'w').write(label if label.endswith('\n') else label + '\n')
PY
grep -q "^START WAL LOCATION" "$COPY/backup_label" || fail "no backup_label content: $(cat "$T/stop.out")"
BACKUP_FILE=$(ls "$ROOT"/main/wal/ | grep '\.backup' | head -1)
[ -n "$BACKUP_FILE" ] || fail "pg_backup_stop returned but no .backup file is in the archive"
psql_at "$PPORT" "insert into t select generate_series(20001, 30000)"
fo_switch_archived "$PPORT"

share_scratch; chmod 0700 "$COPY"
S=$(fo_standby s "$COPY" "$SPORT" "restore_command = '$GET'" "wal_retrieve_retry_interval = '200ms'")
rm -f "$S/postgresql.auto.conf.tmp"
pg_start "$S" "$SPORT"
fo_wait_sql "$SPORT" "select count(*) from t" 30000
grep -q "consistent recovery state reached" "$S.log" || fail "standby never reported consistency"
grep -q "restored log file \".*\" from archive" "$S.log" || fail "standby restored nothing from the archive"
fo_compare_wal "$P" >/dev/null
note "pg_lowlevel_backup: ok ($BACKUP_FILE archived; standby at 30000 rows)"
