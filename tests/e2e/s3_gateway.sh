#!/usr/bin/env bash
# The archive on a real Ceph radosgw (tests/tools/ceph_rgw.sh), through two
# gateway receivers (`walferry serve --store-url s3://...`), one per radosgw:
#  - PostgreSQL 15 archives real WAL through gateway 1; every segment read back
#    straight from the bucket (`walferry get --from s3://...`) is byte-identical;
#  - identical re-push -> 0; different content under the same name -> 4 and the
#    stored object unchanged;
#  - 16 concurrent sends of one name with different content, 8 through each
#    gateway -> exactly one exit 0; the others exit 4 (exists-different) or 8
#    (a gateway refuses a second transfer of a name it is receiving), at least
#    one 4 from the other gateway's conditional PUT; the bucket holds the
#    winner's bytes (16 racing gateways at the archive level: store_s3_archive_rgw_test);
#  - a base backup larger than the multipart threshold, through a pipe, with
#    the gateway killed -9 mid-upload and restarted: the send resumes (same
#    multipart upload, no abandoned upload left) and reads back identical;
#  - radosgw answering 503 SlowDown to every 3rd request (tests/tools/s3_fault_proxy.py):
#    every send retried and exit 0, read back identical; 503 to everything, or
#    answers slower than the gateway's timeout: non-zero, never a false exit 0,
#    and once the store answers again the same sends succeed;
#  - radosgw 1 stopped while PostgreSQL archives: archive_command fails (no
#    false exit 0), and once radosgw is back every segment is archived intact.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/ceph.sh"
ensure_pg_user
ceph_up 2
URL=s3://walferry-e2e/archive

"$WF" tls init "$T/tls" --cluster main --cluster race >/dev/null || fail "tls init"
mkdir -p "$T/tls-main"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
P1=$(free_port); P2=$(free_port)
start_gw() {  # N PORT ENDPOINT [serve args...]
  local n=$1 port=$2 ep=$3; shift 3
  WALFERRY_S3_ATTEMPTS=3 "$WF" serve --root "$T/gw$n" --listen "127.0.0.1:$port" --tls-dir "$T/tls" \
    --store-url "$URL" --s3-endpoint "$ep" --s3-part-size 5 --s3-timeout "${GW_TIMEOUT:-10}" "$@" >>"$T/gw$n.log" 2>&1 &
  echo $! >"$T/gw$n.pid"
  WF_PIDS+=("$!")
  wait_port "$port"
}
start_gw 1 "$P1" "$S3_ENDPOINT"
start_gw 2 "$P2" "$S3_ENDPOINT2"
cat >"$T/main.conf" <<CONF
to = 127.0.0.1:$P1
tls-dir = $T/tls-main
CONF
share_scratch

wait_archived() {  # PORT COUNT
  local port=$1 want=$2 got
  for _ in $(seq 1 900); do
    got=$(psql_at "$port" "select archived_count from pg_stat_archiver")
    [ "$got" -ge "$want" ] && return 0
    sleep 0.1
  done
  psql_at "$port" "select * from pg_stat_archiver" >&2
  fail "only $got of $want segments archived"
}
get_seg() { "$WF" get "$1" "$2" --from "$URL" --cluster main --prefetch 0; }

# --- real WAL through gateway 1, read back from the bucket
PGDATA=$(pg_init main)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica \
  -c "archive_command='$WF push --config $T/main.conf %p'" -c wal_keep_size=4GB -c archive_timeout=0
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s 3 postgres >"$T/pgbench.log" 2>&1 || fail "pgbench -i"
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
want=$(psql_at "$PGPORT" "select count(*) from pg_ls_archive_statusdir() where name ~ '^[0-9A-F]{24}[.](ready|done)$'")
[ "$want" -ge 3 ] || fail "expected several WAL segments, got $want"
wait_archived "$PGPORT" "$want"
n=0
for st in "$PGDATA"/pg_wal/archive_status/*.done; do
  seg=$(basename "$st" .done)
  [[ "$seg" =~ ^[0-9A-F]{24}$ ]] || continue
  get_seg "$seg" "$T/restored-$seg" || fail "get $seg from the bucket failed"
  cmp "$T/restored-$seg" "$PGDATA/pg_wal/$seg" || fail "segment $seg differs when read from the bucket"
  n=$((n + 1))
done
[ "$n" -ge "$want" ] || fail "only $n of $want segments read back"
note "$n real WAL segments archived through the gateway and read back byte-identical from the bucket"
SEG=$seg

# --- identical re-push -> 0, different content -> 4, original intact
(cd "$PGDATA" && "$WF" push --config "$T/main.conf" "pg_wal/$SEG") || fail "identical re-push failed"
mkdir -p "$T/fake/pg_wal"
cp "$PGDATA/pg_wal/$SEG" "$T/fake/pg_wal/$SEG"
printf 'X' | dd of="$T/fake/pg_wal/$SEG" bs=1 seek=100000 conv=notrunc status=none
rc=0; out=$("$WF" push --config "$T/main.conf" "$T/fake/pg_wal/$SEG" 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "different content: exit $rc ($out), want 4"
get_seg "$SEG" "$T/after-$SEG" || fail "get after the refused push"
cmp "$T/after-$SEG" "$PGDATA/pg_wal/$SEG" || fail "original segment changed"
# the same through the other gateway (another radosgw) too
rc=0; "$WF" push --to "127.0.0.1:$P2" --tls-dir "$T/tls-main" "$T/fake/pg_wal/$SEG" 2>/dev/null || rc=$?
[ "$rc" -eq 4 ] || fail "different content through gateway 2: exit $rc, want 4"

# --- 16 racing writers of one name, through both gateways
mkdir -p "$T/race"
for i in $(seq 1 16); do head -c 200000 /dev/urandom >"$T/race/w$i"; done
pids=()
for i in $(seq 1 16); do
  port=$P1; [ $((i % 2)) -eq 0 ] && port=$P2
  ( rc=0; "$WF" send "$T/race/w$i" --name race.bin --to "127.0.0.1:$port" --tls-dir "$T/tls" --cluster race \
      >"$T/race/out$i" 2>&1 || rc=$?; echo "$rc" >"$T/race/rc$i" ) &
  pids+=("$!")
done
for p in "${pids[@]}"; do wait "$p"; done
wins=0; fours=0; eights=0; winner=
for i in $(seq 1 16); do
  rc=$(cat "$T/race/rc$i")
  case "$rc" in
    0) wins=$((wins + 1)); winner=$i ;;
    4) fours=$((fours + 1)) ;;
    8) eights=$((eights + 1)) ;;
    *) fail "racing writer $i: exit $rc ($(cat "$T/race/out$i"))" ;;
  esac
done
[ "$wins" -eq 1 ] && [ "$fours" -ge 1 ] || { tail -n 3 "$T"/race/out* >&2; fail "race: $wins winners, $fours exists-different (want 1 and >= 1)"; }
"$WF" get race.bin "$T/race/got" --from "$URL" --cluster race || fail "get race.bin"
cmp "$T/race/got" "$T/race/w$winner" || fail "the bucket does not hold the winner's bytes"
note "16 racing writers through 2 gateways: exactly one won (writer $winner), $fours exists-different, $eights refused as in progress"

# --- multipart through a pipe, gateway killed -9 mid-upload, send resumes.
# Gateway 3 stores raw (pgbench data compresses 15x: a zstd store would keep
# this base backup in one part).
P3=$(free_port)
start_gw 3 "$P3" "$S3_ENDPOINT" --store raw
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PGPORT" -U postgres -Ft -D - -c fast -X none >"$T/base.tar" 2>"$T/basebackup.log" ||
  fail "pg_basebackup"
size=$(stat -c %s "$T/base.tar")
[ "$size" -gt $((20 << 20)) ] || fail "base backup only $size bytes; want more than 4 parts of 5 MiB"
# Paced pipe: about 8 MiB/s, so the kill lands mid-upload.
python3 -c '
import sys, time
src = open(sys.argv[1], "rb")
while True:
    b = src.read(1 << 20)
    if not b: break
    sys.stdout.buffer.write(b); sys.stdout.buffer.flush(); time.sleep(0.05)
' "$T/base.tar" | "$WF" send - --name base.tar --to "127.0.0.1:$P3" --tls-dir "$T/tls-main" --retries 20 \
  >"$T/send-base.log" 2>&1 &
send_pid=$!
WF_PIDS+=("$send_pid")
for _ in $(seq 1 300); do
  grep -qs '^part=' "$T"/gw3/*.s3state && break
  sleep 0.05
done
grep -qs '^part=' "$T"/gw3/*.s3state || fail "no part uploaded before the kill"
kill -9 "$(cat "$T/gw3.pid")"
note "gateway 3 killed -9 with $(grep -hc '^part=' "$T"/gw3/*.s3state) part(s) in the store"
sleep 0.5
start_gw 3 "$P3" "$S3_ENDPOINT" --store raw
rc=0; wait "$send_pid" || rc=$?
[ "$rc" -eq 0 ] || { cat "$T/send-base.log" >&2; fail "send of the base backup did not resume (exit $rc)"; }
"$WF" get base.tar "$T/base.back" --from "$URL" --cluster main || fail "get base.tar"
cmp "$T/base.back" "$T/base.tar" || fail "base backup differs when read from the bucket"
uploads=$(curl -s --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
  -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "$S3_ENDPOINT/walferry-e2e?uploads" | { grep -o '<UploadId>' || true; } | wc -l)
[ "$uploads" -eq 0 ] || fail "$uploads multipart upload(s) left behind: the send started over instead of resuming"
note "base backup ($size bytes) resumed after kill -9 of the gateway and read back identical"

# --- 503 and slow answers, through a fault proxy in front of radosgw 2
CTL="$T/proxy.ctl"
echo "fail-every 3" >"$CTL"
python3 "$TOOLS/s3_fault_proxy.py" --target "${S3_ENDPOINT2#http://}" --port-file "$T/proxy.port" --control "$CTL" \
  2>"$T/proxy.log" &
WF_PIDS+=("$!")
for _ in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
P4=$(free_port)
GW_TIMEOUT=2 start_gw 4 "$P4" "http://127.0.0.1:$(cat "$T/proxy.port")"
mkdir -p "$T/flaky"
for i in $(seq 1 8); do
  head -c 300000 /dev/urandom >"$T/flaky/f$i"
  "$WF" send "$T/flaky/f$i" --name "flaky$i.bin" --to "127.0.0.1:$P4" --tls-dir "$T/tls-main" >"$T/flaky/out$i" 2>&1 ||
    fail "send through 503s: exit $? ($(cat "$T/flaky/out$i"))"
  "$WF" get "flaky$i.bin" "$T/flaky/back$i" --from "$URL" --cluster main || fail "get flaky$i.bin"
  cmp "$T/flaky/back$i" "$T/flaky/f$i" || fail "flaky$i.bin differs"
done
injected=$(grep -c '^s3_fault_proxy: 503' "$T/proxy.log" || true)
[ "$injected" -ge 3 ] || fail "the proxy injected only $injected 503s"
note "8 sends through $injected injected 503 SlowDown answers: all retried, exit 0, read back identical"
echo "fail-all" >"$CTL"
head -c 300000 /dev/urandom >"$T/flaky/down"
rc=0; "$WF" send "$T/flaky/down" --name down.bin --to "127.0.0.1:$P4" --tls-dir "$T/tls-main" --retries 1 \
  >"$T/flaky/out-down" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "send exited 0 while the store answered only 503"
rc=0; "$WF" get down.bin "$T/flaky/none" --from "$URL" --cluster main 2>/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "down.bin is in the bucket after a failed send (get exit $rc)"
echo "pass" >"$CTL"
"$WF" send "$T/flaky/down" --name down.bin --to "127.0.0.1:$P4" --tls-dir "$T/tls-main" >/dev/null 2>&1 ||
  fail "send after the store recovered"
"$WF" get down.bin "$T/flaky/down.back" --from "$URL" --cluster main && cmp "$T/flaky/down.back" "$T/flaky/down" ||
  fail "down.bin wrong after recovery"
# Slow: every answer 3 s late, beyond gateway 4's 2 s request timeout.
echo "delay 3" >"$CTL"
head -c 300000 /dev/urandom >"$T/flaky/slow"
rc=0; timeout 120 "$WF" send "$T/flaky/slow" --name slow.bin --to "127.0.0.1:$P4" \
  --tls-dir "$T/tls-main" --retries 0 >"$T/flaky/out-slow" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "send exited 0 while every store answer came after the timeout"
echo "pass" >"$CTL"
note "503 to everything and answers past the timeout: send non-zero ($rc), recovers when the store does"

# --- radosgw 1 stopped while PostgreSQL archives: failures, never a false 0
bash "$TOOLS/ceph_rgw.sh" stop-rgw "$CEPH" 1
before=$(psql_at "$PGPORT" "select archived_count from pg_stat_archiver")
psql_at "$PGPORT" "create table t2 as select g from generate_series(1, 100000) g" >/dev/null
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
for _ in $(seq 1 300); do
  [ "$(psql_at "$PGPORT" "select failed_count from pg_stat_archiver")" -ge 1 ] && break
  sleep 0.1
done
[ "$(psql_at "$PGPORT" "select failed_count from pg_stat_archiver")" -ge 1 ] || fail "archive_command never failed with radosgw down"
[ "$(psql_at "$PGPORT" "select archived_count from pg_stat_archiver")" -eq "$before" ] || fail "a segment was reported archived while radosgw was down"
bash "$TOOLS/ceph_rgw.sh" start-rgw "$CEPH" 1 || fail "radosgw did not restart"
want=$(psql_at "$PGPORT" "select count(*) from pg_ls_archive_statusdir() where name ~ '^[0-9A-F]{24}[.](ready|done)$'")
wait_archived "$PGPORT" "$want"
for st in "$PGDATA"/pg_wal/archive_status/*.done; do
  seg=$(basename "$st" .done)
  [[ "$seg" =~ ^[0-9A-F]{24}$ ]] || continue
  get_seg "$seg" "$T/r2-$seg" || fail "get $seg after the outage"
  cmp "$T/r2-$seg" "$PGDATA/pg_wal/$seg" || fail "segment $seg differs after the outage"
done
note "radosgw outage: archive_command failed while it was down, all $want segments intact after"
pg_stop "$PGDATA"

# --- verify, status and cleanup straight against the bucket
"$WF" verify --from "$URL" --cluster main >"$T/verify.out" 2>&1 || { cat "$T/verify.out" >&2; fail "verify of the bucket"; }
"$WF" status --root "$URL" >"$T/status.out" 2>&1 || true
grep -q main "$T/status.out" || { cat "$T/status.out" >&2; fail "status does not list the bucket's cluster"; }
segs=$(ls "$PGDATA"/pg_wal/archive_status/ | grep -E '^[0-9A-F]{24}[.]done$' | sort | sed 's/[.]done$//')
oldest=$(echo "$segs" | head -1); keep=$(echo "$segs" | sed -n 3p)
"$WF" cleanup "$keep" --root "$URL" --cluster main >"$T/cleanup.out" 2>&1 || { cat "$T/cleanup.out" >&2; fail "cleanup on the bucket"; }
rc=0; "$WF" get "$oldest" "$T/gone" --from "$URL" --cluster main --prefetch 0 2>/dev/null || rc=$?
[ "$rc" -eq 1 ] || fail "cleanup left $oldest in the bucket (get exit $rc)"
get_seg "$keep" "$T/kept" && cmp "$T/kept" "$PGDATA/pg_wal/$keep" || fail "cleanup removed $keep (the restart point)"
note "verify, status and cleanup (before $keep) work on the bucket"
echo "s3_gateway: ok"
