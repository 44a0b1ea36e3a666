#!/usr/bin/env bash
# WAL archiving into a real Ceph radosgw (tests/tools/ceph_rgw.sh), side by side
# in one run, NSEG (default 64) real WAL segments pushed one call at a time as
# PostgreSQL's archiver does:
#   disk            walferry push -> walferry serve --root (receiver disk, fsync)
#   gw-http         walferry push -> gateway (serve --store-url) -> radosgw over HTTP
#   gw-https        the same, gateway -> radosgw over HTTPS (what pgBackRest speaks)
#   pgbackrest-s3   pgbackrest archive-push, synchronous, repo1-type=s3 on the same
#                   radosgw (HTTPS, path style, TLS verification off), compress-type=zst
# and scaling with gateways: 4 concurrent archivers (NSEG/4 segments each) through
#   1 gateway (one radosgw) vs 2 gateways (one radosgw each, same cluster).
# Usage: WALFERRY_BIN=build/release/cli/walferry bench/s3_e2e.sh [NSEG]
# Prints seconds, segments/s, MB/s (raw WAL) and ratios. Runs as root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
TOOLS="$HERE/../tests/tools"
NSEG=${1:-64}
ensure_pg_user
bash "$TOOLS/ceph_rgw.sh" available || skip "Ceph packages not installed (scripts/install-deps.sh)"

note "generating $NSEG real WAL segments with pgbench"
PGDATA=$(pg_init bench)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c wal_keep_size=16GB -c max_wal_size=16GB -c checkpoint_timeout=1h
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s $((NSEG / 2 + 5)) postgres >"$T/pgbench.log" 2>&1
segno() { psql_at "$PGPORT" "select ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 17, 8))::bit(32)::int"; }
while [ "$(segno)" -le "$((NSEG + 2))" ]; do
  psql_at "$PGPORT" "insert into pgbench_history select (random()*100)::int, (random()*10)::int, g, (random()*10000)::int, now(), substr(md5(g::text), 1, 22) from generate_series(1, 500000) g" >/dev/null
done
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
mkdir -p "$T/wal"
ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -n "$NSEG" >"$T/segs"
while read -r s; do cp "$PGDATA/pg_wal/$s" "$T/wal/"; done <"$T/segs"
[ "$(wc -l <"$T/segs")" -eq "$NSEG" ] || fail "only $(wc -l <"$T/segs") segments"

CEPH="$T/ceph"
CEPH_RGW_TLS=1 bash "$TOOLS/ceph_rgw.sh" start "$CEPH" 2 >"$T/ceph.log" 2>&1 || { cat "$T/ceph.log"; fail "Ceph did not come up"; }
ceph_cleanup() { local rc=$?; bash "$TOOLS/ceph_rgw.sh" stop "$CEPH" || true; return "$rc"; }
trap 'ceph_cleanup || wf_cleanup; wf_cleanup' EXIT
set -a; . "$CEPH/env"; set +a
share_scratch
declare -A SECS

timeit() {  # NAME SEGLIST CMD...
  local name=$1 list=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  while read -r s; do "$@" "$s" || fail "$name failed on $s"; done <"$list"
  t1=$(date +%s.%N)
  SECS[$name]=$(echo "$t1 - $t0" | bc -l)
  note "$name: ${SECS[$name]} s"
}

"$WF" tls init "$T/tls" --cluster main --cluster c1 --cluster c2 --cluster c3 --cluster c4 >/dev/null
start_serve() {  # NAME PORT [args]: a receiver
  local name=$1 port=$2; shift 2
  "$WF" serve --root "$T/$name" --listen "127.0.0.1:$port" --tls-dir "$T/tls" "$@" 2>"$T/$name.log" &
  WF_PIDS+=("$!")
  echo $! >"$T/$name.pid"
  wait_port "$port"
}
push_to() { "$WF" push --to "127.0.0.1:$1" --tls-dir "$T/tls" --cluster "$2" "$T/wal/$3"; }

# ---------- disk receiver ----------
PD=$(free_port); start_serve disk "$PD"
disk_push() { push_to "$PD" main "$1"; }
timeit disk "$T/segs" disk_push
# ---------- gateway over HTTP ----------
PG1=$(free_port); start_serve gw1 "$PG1" --store-url s3://bench/http --s3-endpoint "$S3_ENDPOINT"
gw1_push() { push_to "$PG1" main "$1"; }
timeit gw-http "$T/segs" gw1_push
# ---------- gateway over HTTPS ----------
PGS=$(free_port); WALFERRY_S3_INSECURE=1 start_serve gws "$PGS" --store-url s3://bench/https --s3-endpoint "$S3_TLS_ENDPOINT"
gws_push() { push_to "$PGS" main "$1"; }
timeit gw-https "$T/segs" gws_push

# ---------- pgBackRest, S3 repo on the same radosgw ----------
PGBR="$T/pgbr"
mkdir -p "$PGBR/log" "$PGBR/lock" "$PGBR/spool"
curl -s -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' -X PUT "$S3_ENDPOINT/pgbr"
cat >"$PGBR/pgbackrest.conf" <<CONF
[global]
repo1-type=s3
repo1-path=/repo
repo1-s3-bucket=pgbr
repo1-s3-endpoint=127.0.0.1
repo1-storage-port=${S3_TLS_ENDPOINT##*:}
repo1-s3-region=us-east-1
repo1-s3-key=$AWS_ACCESS_KEY_ID
repo1-s3-key-secret=$AWS_SECRET_ACCESS_KEY
repo1-s3-uri-style=path
repo1-storage-verify-tls=n
compress-type=zst
archive-async=n
log-level-console=warn
log-level-file=off
log-path=$PGBR/log
lock-path=$PGBR/lock
spool-path=$PGBR/spool

[bench]
pg1-path=$PGDATA
pg1-port=$PGPORT
pg1-socket-path=/tmp
pg1-user=postgres
CONF
share_scratch
as_pg pgbackrest --config="$PGBR/pgbackrest.conf" --stanza=bench stanza-create >"$T/pgbr.log" 2>&1 ||
  { cat "$T/pgbr.log" >&2; fail "pgbackrest stanza-create on the S3 repo"; }
pgbr_push() { as_pg pgbackrest --config="$PGBR/pgbackrest.conf" --stanza=bench archive-push "$T/wal/$1"; }
timeit pgbackrest-s3 "$T/segs" pgbr_push

# ---------- 1 vs 2 gateways, 4 concurrent archivers ----------
split -n r/4 -d "$T/segs" "$T/part."
PG2=$(free_port); start_serve gw2 "$PG2" --store-url s3://bench/two --s3-endpoint "$S3_ENDPOINT2"
PG1B=$(free_port); start_serve gw1b "$PG1B" --store-url s3://bench/two --s3-endpoint "$S3_ENDPOINT"
PG1C=$(free_port); start_serve gw1c "$PG1C" --store-url s3://bench/one --s3-endpoint "$S3_ENDPOINT"
parallel4() {  # NAME PORT_A PORT_B: archivers 1,3 -> A, 2,4 -> B
  local name=$1 a=$2 b=$3 t0 t1 pids=()
  t0=$(date +%s.%N)
  for i in 0 1 2 3; do
    local port=$a; [ $((i % 2)) -eq 1 ] && port=$b
    ( while read -r s; do push_to "$port" "c$((i + 1))" "$s" || exit 1; done <"$T/part.0$i" ) &
    pids+=("$!")
  done
  for p in "${pids[@]}"; do wait "$p" || fail "$name: an archiver failed"; done
  t1=$(date +%s.%N)
  SECS[$name]=$(echo "$t1 - $t0" | bc -l)
  note "$name: ${SECS[$name]} s"
}
cpu() {  # PID: user+system CPU seconds so far
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}
GWPID=$(cat "$T/gw1c.pid"); RGWPID=$(cat "$CEPH/rgw1.pid"); OSDPID=$(cat "$CEPH/osd.pid")
g0=$(cpu "$GWPID"); r0=$(cpu "$RGWPID"); o0=$(cpu "$OSDPID")
parallel4 "4x-1gw" "$PG1C" "$PG1C"
g1=$(cpu "$GWPID"); r1=$(cpu "$RGWPID"); o1=$(cpu "$OSDPID")
parallel4 "4x-2gw" "$PG1B" "$PG2"
pg_stop "$PGDATA"

MB=$((NSEG * 16))
printf '%-14s %9s %9s %9s %14s\n' path seconds seg/s MB/s vs_pgbackrest
for k in disk gw-http gw-https pgbackrest-s3 4x-1gw 4x-2gw; do
  s=${SECS[$k]}
  printf '%-14s %9.2f %9.1f %9.1f %13.2fx\n' "$k" "$s" "$(echo "$NSEG / $s" | bc -l)" "$(echo "$MB / $s" | bc -l)" \
    "$(echo "${SECS[pgbackrest-s3]} / $s" | bc -l)"
done
printf '2 gateways vs 1 (4 archivers): %.2fx\n' "$(echo "${SECS[4x-1gw]} / ${SECS[4x-2gw]}" | bc -l)"
printf 'gateway (HTTP) vs disk receiver: %.2fx the time\n' "$(echo "${SECS[gw-http]} / ${SECS[disk]}" | bc -l)"
printf 'CPU per segment during 4x-1gw: gateway %.1f ms, radosgw %.1f ms, ceph-osd %.1f ms (load average %s)\n' \
  "$(echo "($g1 - $g0) * 1000 / $NSEG" | bc -l)" "$(echo "($r1 - $r0) * 1000 / $NSEG" | bc -l)" \
  "$(echo "($o1 - $o0) * 1000 / $NSEG" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
