#!/usr/bin/env bash
# Real PostgreSQL data through walferry compress/decompress: a pg_basebackup
# tar stream piped straight into the compressor (as a user would), and real
# WAL segments from pg_wal, round-tripped byte-identical in both modes and
# read back by stock gzip/zstd.
. "$(dirname "$0")/lib/common.sh"

port=$(free_port)
dir=$(pg_init compress)
pg_start "$dir" "$port"
as_pg "$PGBIN/pgbench" -i -s 5 -q -h 127.0.0.1 -p "$port" -U postgres postgres >"$T/pgbench.log" 2>&1 \
  || fail "pgbench -i failed"
psql_at "$port" "CHECKPOINT" >/dev/null

for mode in zstd gzip; do
  ext=$([ $mode = gzip ] && echo gz || echo zst)
  # The user's pipeline: pg_basebackup -Ft -D - | walferry compress > base.tar.X
  "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -Ft -X fetch -D - 2>"$T/bb.log" \
    | tee "$T/base-$mode.tar" | "$WF" compress --$mode -p 2 > "$T/base.tar.$ext" \
    || fail "pg_basebackup | walferry compress --$mode failed"
  size=$(stat -c %s "$T/base-$mode.tar")
  [ "$size" -gt $((50 * 1024 * 1024)) ] || fail "base backup suspiciously small: $size"
  "$WF" decompress < "$T/base.tar.$ext" | cmp - "$T/base-$mode.tar" || fail "$mode: base backup differs"
  "$WF" decompress -c "$T/base.tar.$ext" | tar -tf - > "$T/list" || fail "$mode: tar -t failed"
  grep -q '^global/pg_control$' "$T/list" || fail "$mode: decompressed stream is not the base backup tar"
  if [ $mode = gzip ]; then
    gzip -dc "$T/base.tar.$ext" | cmp - "$T/base-$mode.tar" || fail "gzip -dc of the base backup differs"
  else
    zstd -q -dc "$T/base.tar.$ext" | cmp - "$T/base-$mode.tar" || fail "zstd -dc of the base backup differs"
  fi
  note "$mode: base backup $size -> $(stat -c %s "$T/base.tar.$ext") bytes, identical"
  rm -f "$T/base-$mode.tar"
done

# Real WAL segments, as files: FILE -> FILE.zst/.gz -> FILE.
mkdir -p "$T/wal"
n=0
for seg in "$dir"/pg_wal/0000000*; do
  [ -f "$seg" ] || continue
  cp "$seg" "$T/wal/"
  n=$((n + 1))
  [ $n -ge 4 ] && break
done
[ $n -ge 2 ] || fail "only $n WAL segments in pg_wal"
for seg in "$T"/wal/*; do
  for mode in zstd gzip; do
    ext=$([ $mode = gzip ] && echo gz || echo zst)
    "$WF" compress --$mode -k "$seg" || fail "compress $seg"
    "$WF" decompress -o "$seg.back" "$seg.$ext" || fail "decompress $seg.$ext"
    cmp "$seg" "$seg.back" || fail "$mode: WAL segment $(basename "$seg") differs"
    rm -f "$seg.back" "$seg.$ext"
  done
done
note "$n WAL segments round-tripped in both modes"
echo "compress pgdata: ok"
