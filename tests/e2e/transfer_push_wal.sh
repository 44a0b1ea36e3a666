#!/usr/bin/env bash
# walferry push as PostgreSQL's archive_command, end to end:
#  - a throw-away PostgreSQL 15 archives real WAL (pgbench) with
#    archive_command = 'walferry push %p ...' over TLS; every archived segment
#    decompresses (stock zstd) to the bytes of the segment;
#  - re-push of an identical segment -> 0; a different file under the same name
#    -> exit 4 and the original intact; a segment of another cluster (other
#    system identifier) under this cluster's certificate -> refused;
#  - a cluster initdb'd with --wal-segsize=64 archives 64 MiB segments (raw store).
. "$(dirname "$0")/lib/common.sh"
"$WF" push --help >/dev/null 2>&1 || skip "push not built"
ensure_pg_user

"$WF" tls init "$T/tls" --cluster main --cluster big >/dev/null || fail "tls init"
# Client directories readable by the PostgreSQL user.
for c in main big; do
  mkdir -p "$T/tls-$c"
  cp "$T/tls/ca.crt" "$T/tls/client-$c.crt" "$T/tls/client-$c.key" "$T/tls-$c/"
done
ROOT="$T/root"
RAWROOT="$T/rawroot"
PORT=$(free_port)
RAWPORT=$(free_port)
"$WF" serve --root "$ROOT" --listen "127.0.0.1:$PORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
WF_PIDS+=("$!")
"$WF" serve --root "$RAWROOT" --listen "127.0.0.1:$RAWPORT" --tls-dir "$T/tls" --store raw >"$T/serve-raw.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$PORT"
wait_port "$RAWPORT"

# The config file carries everything but %p, as an operator would write it.
cat >"$T/main.conf" <<CONF
# walferry push configuration for the test primary
to = 127.0.0.1:$PORT
tls-dir = $T/tls-main
CONF
cat >"$T/big.conf" <<CONF
to = 127.0.0.1:$RAWPORT
tls-dir = $T/tls-big
cluster = big
CONF
share_scratch

wait_archived() {  # PORT COUNT: waits until pg_stat_archiver counts COUNT segments, no failures
  local port=$1 want=$2 got
  for _ in $(seq 1 600); do
    got=$(psql_at "$port" "select archived_count from pg_stat_archiver")
    [ "$got" -ge "$want" ] && return 0
    sleep 0.1
  done
  psql_at "$port" "select * from pg_stat_archiver" >&2
  tail -5 "$T"/pg-*.log >&2
  fail "only $got of $want segments archived"
}

# --- 16 MiB segments, zstd store
PGDATA=$(pg_init main)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica \
  -c "archive_command='$WF push --config $T/main.conf %p'" -c wal_keep_size=4GB
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 5 postgres >"$T/pgbench.log" 2>&1 \
  || fail "pgbench -i"
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -t 2000 -c 2 postgres >>"$T/pgbench.log" 2>&1 \
  || fail "pgbench"
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
want=$(psql_at "$PGPORT" "select count(*) from pg_ls_archive_statusdir() where name ~ '^[0-9A-F]{24}[.](ready|done)$'")
[ "$want" -ge 4 ] || fail "expected several WAL segments, got $want"
wait_archived "$PGPORT" "$want"
pg_stop "$PGDATA"
# Every archived segment is byte-identical to PostgreSQL's (wal_keep_size keeps them).
n=0
for f in "$ROOT"/main/wal/*.zst; do
  seg=$(basename "$f" .zst)
  [[ "$seg" =~ ^[0-9A-F]{24}$ ]] || continue
  zstd -qdc "$f" | cmp - "$PGDATA/pg_wal/$seg" || fail "segment $seg differs after decompression"
  n=$((n + 1))
done
[ "$n" -ge "$want" ] || fail "only $n segments archived, PostgreSQL counted $want"
note "$n real WAL segments archived by PostgreSQL through walferry push and verified"
SEG=$(basename "$(ls "$ROOT"/main/wal/*.zst | head -1)" .zst)

# --- re-push identical -> 0 (run from the data directory, relative %p, as PostgreSQL does)
(cd "$PGDATA" && "$WF" push --config "$T/main.conf" "pg_wal/$SEG") || fail "re-push of an identical segment failed"
# --- different content under the same name -> 4, original intact
mkdir -p "$T/fake/pg_wal"
cp "$PGDATA/pg_wal/$SEG" "$T/fake/pg_wal/$SEG"
printf 'X' | dd of="$T/fake/pg_wal/$SEG" bs=1 seek=100000 conv=notrunc status=none
before=$(sha256sum <"$ROOT/main/wal/$SEG.zst")
rc=0; out=$("$WF" push --config "$T/main.conf" "$T/fake/pg_wal/$SEG" 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "different content: exit $rc ($out), want 4"
[ "$(sha256sum <"$ROOT/main/wal/$SEG.zst")" = "$before" ] || fail "original segment changed"
# --- not a WAL name -> refused (8); missing file -> non-zero, one line
echo hello >"$T/fake/notwal.txt"
rc=0; "$WF" push --config "$T/main.conf" "$T/fake/notwal.txt" 2>/dev/null || rc=$?
[ "$rc" -eq 8 ] || fail "push of a non-WAL name: exit $rc, want 8"
rc=0; out=$("$WF" push --config "$T/main.conf" "$T/fake/pg_wal/000000010000000000000099" 2>&1) || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -le 125 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] || fail "missing file: exit $rc ($out)"

# --- 64 MiB segments, raw store, cluster "big"
BIGDATA=$(pg_init big --wal-segsize=64)
BIGPORT=$(free_port)
pg_start "$BIGDATA" "$BIGPORT" -c archive_mode=on -c wal_level=replica \
  -c "archive_command='$WF push --config $T/big.conf %p'" -c wal_keep_size=4GB
psql_at "$BIGPORT" "create table t as select g, md5(g::text) from generate_series(1, 200000) g" >/dev/null
psql_at "$BIGPORT" "select pg_switch_wal()" >/dev/null
wait_archived "$BIGPORT" 1
pg_stop "$BIGDATA"
m=0
for f in "$RAWROOT"/big/wal/*; do
  seg=$(basename "$f")
  [[ "$seg" =~ ^[0-9A-F]{24}$ ]] || continue
  [ "$(stat -c %s "$BIGDATA/pg_wal/$seg")" -eq $((64 << 20)) ] || fail "segment $seg is not 64 MiB"
  cmp "$RAWROOT/big/wal/$seg" "$BIGDATA/pg_wal/$seg" || fail "64 MiB segment $seg differs"
  m=$((m + 1))
done
[ "$m" -ge 1 ] || fail "no 64 MiB segment archived"
note "$m 64 MiB segments archived (raw store) and verified"

# --- a segment of cluster "big" pushed with the "main" certificate: other system id -> refused
BIGSEG=$(basename "$(ls "$RAWROOT"/big/wal/ | grep -E '^[0-9A-F]{24}$' | head -1)")
before=$(sha256sum <"$ROOT/main/wal/$BIGSEG.zst" 2>/dev/null || echo absent)
rc=0; out=$("$WF" push --config "$T/main.conf" "$BIGDATA/pg_wal/$BIGSEG" 2>&1) || rc=$?
[ "$rc" -eq 8 ] || fail "foreign cluster's segment: exit $rc ($out), want 8"
[ "$(sha256sum <"$ROOT/main/wal/$BIGSEG.zst" 2>/dev/null || echo absent)" = "$before" ] || fail "foreign segment placed"
echo "transfer_push_wal: ok"
