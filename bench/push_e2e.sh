#!/usr/bin/env bash
# archive_command throughput: NSEG (default 200) real WAL segments pushed one
# call at a time, as PostgreSQL's archiver does, by
#   walferry push   (TLS 1.3, receiver fsyncs file + directory before answering)
#   pgbackrest archive-push (Debian's pgBackRest, synchronous, posix repo, compress-type=zst)
#   rsync -a over ssh to 127.0.0.1 (own sshd on a free port), scp (no fsync on the far side)
#   cp + fsync (local floor)
# Usage: WALFERRY_BIN=build/cli/walferry bench/push_e2e.sh [NSEG]   (SKIP_SSH=1: no rsync/scp)
# Prints a table of seconds and segments/s, and walferry's ratio to pgBackRest.
# Runs as root (starts PostgreSQL as an unprivileged user through tests/e2e/lib/common.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/lib/pgbackrest.sh"
. "$HERE/lib/sshd.sh"
NSEG=${1:-200}
ensure_pg_user

# ---------- real WAL ----------
note "generating $NSEG real WAL segments with pgbench"
PGDATA=$(pg_init bench)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c wal_keep_size=16GB -c max_wal_size=16GB -c checkpoint_timeout=1h
# WAL from a pgbench load (COPY, index builds, vacuum), topped up by pgbench
# transactions and bulk inserts into its history table.
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s $((NSEG / 2 + 5)) postgres >"$T/pgbench.log" 2>&1
# Segment number over the whole LSN range (log id * segments per log id + low
# part): the low 8 hex digits alone go back to 0 after 0xFF for 16 MiB segments.
segno() { psql_at "$PGPORT" "select ('x' || substr(f, 9, 8))::bit(32)::bigint * 256 + ('x' || substr(f, 17, 8))::bit(32)::bigint from pg_walfile_name(pg_current_wal_lsn()) f"; }
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -T 10 -c 2 -j 2 postgres >>"$T/pgbench.log" 2>&1
while [ "$(segno)" -le "$((NSEG + 2))" ]; do
  psql_at "$PGPORT" "insert into pgbench_history select (random()*100)::int, (random()*10)::int, g, (random()*10000)::int, now(), substr(md5(g::text), 1, 22) from generate_series(1, 500000) g" >/dev/null
done
psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
mkdir -p "$T/wal"
ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -n "$NSEG" >"$T/segs"
while read -r s; do cp "$PGDATA/pg_wal/$s" "$T/wal/"; done <"$T/segs"
[ "$(wc -l <"$T/segs")" -eq "$NSEG" ] || fail "only $(wc -l <"$T/segs") segments"
# Valid, consecutive names across the 0xFF -> next log id step (16 MiB segments).
python3 - "$T/segs" <<'PY' || fail "segment names are not consecutive"
import re, sys
names = open(sys.argv[1]).read().split()
nums = []
for n in names:
    assert re.fullmatch(r"[0-9A-F]{24}", n), n
    assert int(n[16:], 16) <= 0xFF, n
    nums.append(int(n[8:16], 16) * 256 + int(n[16:], 16))
assert all(b == a + 1 for a, b in zip(nums, nums[1:])), "gap in " + " ".join(names)
PY
share_scratch
declare -A SECS

timeit() {  # NAME CMD...: runs CMD for every segment, records wall seconds
  local name=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  while read -r s; do "$@" "$s" || fail "$name failed on $s"; done <"$T/segs"
  t1=$(date +%s.%N)
  SECS[$name]=$(echo "$t1 - $t0" | bc -l)
  note "$name: ${SECS[$name]} s"
}

# ---------- walferry ----------
"$WF" tls init "$T/tls" --cluster main >/dev/null
mkdir -p "$T/tls-main"
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
WPORT=$(free_port)
"$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>"$T/serve.log" &
WF_PIDS+=("$!")
wait_port "$WPORT"
wf_push() { (cd "$T" && "$WF" push --to "127.0.0.1:$WPORT" --tls-dir "$T/tls-main" "wal/$1"); }
timeit walferry wf_push

# ---------- pgBackRest ----------
PGBR="$T/pgbr"
pgbr_conf "$PGBR/pgbackrest.conf" "$PGBR" n "$PGDATA"
as_pg pgbackrest --config="$PGBR/pgbackrest.conf" --stanza=bench stanza-create >"$T/pgbr.log" 2>&1 \
  || { cat "$T/pgbr.log" >&2; fail "pgbackrest stanza-create"; }
pgbr_push() { as_pg pgbackrest --config="$PGBR/pgbackrest.conf" --stanza=bench archive-push "$T/wal/$1"; }
timeit pgbackrest pgbr_push

# ---------- rsync / scp over ssh ----------
if [ -z "${SKIP_SSH:-}" ]; then
SSHD=$T/ssh
start_loopback_sshd "$SSHD"
mkdir -p "$T/rsync-dst" "$T/scp-dst"
rsync_push() { rsync -a -e "$SSH" "$T/wal/$1" "root@127.0.0.1:$T/rsync-dst/"; }
scp_push() { scp -q -P "$SPORT" -i "$SSHD/client_key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -o BatchMode=yes -o LogLevel=ERROR "$T/wal/$1" "root@127.0.0.1:$T/scp-dst/"; }
timeit rsync_ssh rsync_push
timeit scp scp_push
fi

# ---------- cp + fsync ----------
mkdir -p "$T/cp-dst"
cp_push() { cp "$T/wal/$1" "$T/cp-dst/$1.tmp" && sync "$T/cp-dst/$1.tmp" && mv "$T/cp-dst/$1.tmp" "$T/cp-dst/$1" && sync "$T/cp-dst"; }
timeit cp_fsync cp_push

# ---------- sanity: walferry's archive holds every segment ----------
n=$(ls "$T/wf-root/main/wal" | wc -l)
[ "$n" -eq "$NSEG" ] || fail "walferry archive holds $n of $NSEG segments"
wfsize=$(du -sb "$T/wf-root/main/wal" | cut -f1)
brsize=$(du -sb "$PGBR/repo/archive" | cut -f1)

echo
echo "push of $NSEG real 16 MiB WAL segments, one call each ($(nproc) cores)"
printf '%-12s %9s %9s %12s\n' tool seconds seg/s vs_pgbackrest
for k in walferry pgbackrest rsync_ssh scp cp_fsync; do
  [ -n "${SECS[$k]:-}" ] || continue
  s=${SECS[$k]}
  printf '%-12s %9.2f %9.1f %11.2fx\n' "$k" "$s" "$(echo "$NSEG / $s" | bc -l)" "$(echo "${SECS[pgbackrest]} / $s" | bc -l)"
done
echo "archive size: walferry $((wfsize >> 20)) MiB, pgbackrest $((brsize >> 20)) MiB (raw $((NSEG * 16)) MiB)"
