#!/usr/bin/env bash
# Archive-only standby: a standby without primary_conninfo catches up from the
# walferry archive alone (restore_command = 'walferry get ...'), and replays
# exactly the segments that were archived - no more, no less. Also: `get` exits
# 1 quietly for a missing segment, `verify` finds a punched hole and a flipped
# byte, `cleanup` removes only what is older than the restart point.
#
# The archive is filled by `walferry push` through a receiver when the
# transport commands exist, else by `cp` (a raw archive, as a hand-made one).
. "$(dirname "$0")/lib/common.sh"

ensure_pg_user
ROOT=$T/archive
P=$(pg_init prim)
PORT=$(free_port)
SPORT=$(free_port)

if grep -qE "^ +serve " <<<"$("$WF" --help 2>/dev/null)" && grep -qE "^ +push " <<<"$("$WF" --help 2>/dev/null)"; then
  MODE=push
  RPORT=$(free_port)
  mkdir -p "$ROOT"; share_scratch
  as_pg "$WF" serve --root "$ROOT" --listen 127.0.0.1:"$RPORT" --insecure-loopback >"$T/serve.log" 2>&1 &
  WF_PIDS+=($!)
  wait_port "$RPORT"
  # as_pg may run it under runuser: kill the receiver itself on exit, not only runuser.
  WF_PIDS+=($(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | cut -d= -f2))
  ARCHIVE_ARGS=(--to 127.0.0.1:"$RPORT" --cluster main --insecure-loopback)
else
  MODE=cp
  mkdir -p "$ROOT/main/wal" "$ROOT/main/files"; share_scratch
  ARCHIVE_ARGS=(--archive-command "cp %p $ROOT/main/wal/%f")
fi
note "archiving with $MODE"

out=$(as_pg "$WF" setup primary --pgdata "$P" "${ARCHIVE_ARGS[@]}" --archive-timeout 0 \
  --standby-address 127.0.0.1 --replication-user postgres --auth-method trust --apply) \
  || fail "setup primary --apply failed"
grep -q "restart needed for: archive_mode" <<<"$out" || fail "setup did not say archive_mode needs a restart: $out"
grep -q "^archive_mode = 'on'" "$P/postgresql.auto.conf" || fail "archive_mode not written"
ls "$P"/postgresql.auto.conf.walferry-* >/dev/null || fail "no backup copy of postgresql.auto.conf"
pg_start "$P" "$PORT"

as_pg "$PGBIN/pgbench" -q -i -s 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >"$T/pgbench.log" 2>&1 \
  || fail "pgbench -i failed"

# Base backup into the archive.
if [ "$MODE" = push ]; then
  as_pg "$WF" basebackup --to 127.0.0.1:"$RPORT" --cluster main --insecure-loopback --name base.tar \
    -h 127.0.0.1 -p "$PORT" -U postgres -c fast >"$T/basebackup.log" 2>&1 || fail "walferry basebackup failed"
else
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -c fast -Ft -D - -X fetch 2>"$T/basebackup.log" \
    | zstd -q -c >"$ROOT/main/files/base.tar.zst" || fail "pg_basebackup failed"
  share_scratch
fi

# Rows that reach the archive, then rows that do not (no segment switch after them).
psql_at "$PORT" "create table marker(i int); insert into marker select generate_series(1,1000)"
LAST=$(psql_at "$PORT" "select pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 200); do
  [ "$(psql_at "$PORT" "select coalesce(last_archived_wal,'') from pg_stat_archiver")" = "$LAST" ] && break
  sleep 0.1
done
[ "$(psql_at "$PORT" "select last_archived_wal from pg_stat_archiver")" = "$LAST" ] || fail "$LAST not archived"
psql_at "$PORT" "insert into marker select generate_series(1001,1500)"

# get: a segment that is not archived exits 1 without a word.
set +e
err=$("$WF" get 0000000100000000000000FE "$T/nothing" --from "$ROOT" 2>&1 >/dev/null); rc=$?
set -e
[ "$rc" -eq 1 ] || fail "get of a missing segment exited $rc, want 1"
[ -z "$err" ] || fail "get of a missing segment printed: $err"
[ ! -e "$T/nothing" ] || fail "get of a missing segment created its destination"

# The standby, from the archive alone.
S="$T/pg-stby"
RESTORE=()
if [ "$MODE" = push ]; then
  # Over the network: restore_command fetches from the receiver (FETCH).
  RESTORE=(--restore-command "$WF get %f %p --from 127.0.0.1:$RPORT --cluster main --insecure-loopback")
  set +e
  err=$("$WF" get 0000000100000000000000FE "$T/nothing" --from 127.0.0.1:"$RPORT" --insecure-loopback 2>&1 >/dev/null); rc=$?
  set -e
  [ "$rc" -eq 1 ] && [ -z "$err" ] || fail "remote get of a missing segment: exit $rc, said: $err"
  "$WF" get "$LAST" "$T/remote.seg" --from 127.0.0.1:"$RPORT" --insecure-loopback --prefetch 0 || fail "remote get"
  "$WF" get "$LAST" "$T/local.seg" --from "$ROOT" --prefetch 0 || fail "local get"
  cmp -s "$T/remote.seg" "$T/local.seg" || fail "remote and local get differ"
fi
as_pg "$WF" restore-base base.tar --from "$ROOT" --pgdata "$S" "${RESTORE[@]}" >"$T/restore.log" 2>&1 \
  || { cat "$T/restore.log" >&2; fail "restore-base failed"; }
[ -f "$S/standby.signal" ] || fail "no standby.signal"
grep -q "^restore_command = '.*get %f %p --from " "$S/postgresql.auto.conf" || fail "restore_command not written"
grep -q "^primary_conninfo" "$S/postgresql.auto.conf" && fail "archive-only standby got a primary_conninfo"
[ "$(stat -c %a "$S")" = 700 ] || fail "data directory mode is not 0700"
if [ "$MODE" = push ]; then
  # The same base backup read over the network gives the same data directory.
  as_pg "$WF" restore-base base.tar --from 127.0.0.1:"$RPORT" --insecure-loopback --pgdata "$T/pg-remote" \
    "${RESTORE[@]}" >"$T/restore-remote.log" 2>&1 || { cat "$T/restore-remote.log" >&2; fail "remote restore-base"; }
  diff -r -x postgresql.auto.conf "$S" "$T/pg-remote" >/dev/null || fail "remote restore-base differs from the local one"
  # ... but for archive_cleanup_command, which needs the archive's file system.
  diff <(grep -v '^archive_cleanup_command' "$S/postgresql.auto.conf") "$T/pg-remote/postgresql.auto.conf" >/dev/null \
    || fail "remote restore-base wrote another configuration"
  rm -rf "$T/pg-remote"
fi
# restore-base refuses a non-empty directory.
as_pg "$WF" restore-base base.tar --from "$ROOT" --pgdata "$S" >/dev/null 2>&1 && fail "restore-base overwrote a non-empty data directory"

# get's prefetch cache lives under the cache home, outside PGDATA: keep it in $T.
export XDG_CACHE_HOME="$T/standby-cache"
as_pg mkdir -m 0700 "$XDG_CACHE_HOME"
pg_start "$S" "$SPORT" "-c wal_retrieve_retry_interval=200ms"
wait_rows() {  # port count
  for _ in $(seq 1 300); do
    [ "$(psql_at "$1" "select count(*) from marker" 2>/dev/null)" = "$2" ] && return 0
    sleep 0.2
  done
  fail "standby on $1 never showed $2 rows (has $(psql_at "$1" "select count(*) from marker" 2>&1))"
}
wait_rows "$SPORT" 1000
sleep 2  # would the unarchived rows show up? they must not
[ "$(psql_at "$SPORT" "select count(*) from marker")" = 1000 ] || fail "standby replayed WAL that was never archived"
REPLAY=$(psql_at "$SPORT" "select pg_last_wal_replay_lsn()")
[ "$(psql_at "$PORT" "select pg_walfile_name('$REPLAY'::pg_lsn)")" = "$LAST" ] \
  || fail "standby replayed to $REPLAY, not to the end of the last archived segment $LAST"
# Every segment it restored is an archived one, and the last is $LAST.
restored=$(grep -o 'restored log file "[0-9A-F]\{24\}" from archive' "$S.log" | grep -o '[0-9A-F]\{24\}' | sort -u)
[ -n "$restored" ] || fail "standby restored nothing from the archive"
[ "$(echo "$restored" | tail -1)" = "$LAST" ] || fail "last restored segment is not $LAST"
for seg in $restored; do
  ls "$ROOT/main/wal/$seg"* >/dev/null 2>&1 || fail "standby restored $seg, which is not in the archive"
done
[ -d "$XDG_CACHE_HOME/walferry/prefetch" ] || fail "get did not prefetch"
[ -e "$S/pg_wal/walferry-prefetch" ] && fail "get prefetched into PGDATA (pg_rewind would carry it)"
[ "$(psql_at "$SPORT" "select pg_is_in_recovery()")" = t ] || fail "standby left recovery"

# More archived WAL: the standby follows.
psql_at "$PORT" "select pg_switch_wal()" >/dev/null
wait_rows "$SPORT" 1500
note "archive-only standby replayed exactly the archived WAL"

# status on the receiver side.
as_pg "$WF" status --root "$ROOT" --json >"$T/status.json" || fail "status --root failed"
python3 - "$T/status.json" <<'PY' || fail "status --json: $(cat "$T/status.json")"
import json, sys
j = json.load(open(sys.argv[1]))
c = j["archive"][0]
assert c["cluster"] == "main" and c["gaps"] == [] and c["newest_segment"], c
PY

# verify: clean, then a punched hole and a flipped byte are found.
as_pg "$WF" verify --root "$ROOT" >"$T/verify-ok.log" 2>&1 || { cat "$T/verify-ok.log" >&2; fail "verify failed on a good archive"; }
mapfile -t segs < <(cd "$ROOT/main/wal" && ls | grep -E '^[0-9A-F]{24}(\.zst|\.gz)?$' | sort)
[ "${#segs[@]}" -ge 4 ] || fail "too few archived segments (${#segs[@]})"
HOLE=${segs[1]}; FLIP=${segs[2]}
FLIPNAME=${FLIP:0:24}
if [ "$FLIP" = "$FLIPNAME" ]; then  # raw store: make it zstd, as the default store keeps it
  zstd -q --rm "$ROOT/main/wal/$FLIP"; FLIP=$FLIP.zst
fi
rm "$ROOT/main/wal/$HOLE"
python3 - "$ROOT/main/wal/$FLIP" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x10
open(p, "wb").write(b)
PY
set +e
"$WF" verify --root "$ROOT" >"$T/verify-bad.log" 2>&1; rc=$?
set -e
[ "$rc" -ne 0 ] || fail "verify passed an archive with a hole and a flipped byte"
grep -q "missing ${HOLE:0:24}" "$T/verify-bad.log" || fail "verify did not name the hole ${HOLE:0:24}: $(cat "$T/verify-bad.log")"
grep -q "corrupt $FLIPNAME" "$T/verify-bad.log" || fail "verify did not name the corrupt $FLIPNAME: $(cat "$T/verify-bad.log")"

# cleanup %r: strictly older goes, the restart point and newer stay.
KEEP=${segs[3]:0:24}
as_pg "$WF" cleanup "$KEEP" --root "$ROOT" || fail "cleanup failed"
for s in "${segs[@]}"; do
  n=${s:0:24}
  if [[ "${n:8}" < "${KEEP:8}" ]]; then
    ls "$ROOT/main/wal/$n"* >/dev/null 2>&1 && fail "cleanup kept $n, older than $KEEP"
  else
    ls "$ROOT/main/wal/$n"* >/dev/null 2>&1 || fail "cleanup removed $n (restart point $KEEP)"
  fi
done
note "pg_archive_only: ok"
