#!/usr/bin/env bash
# The walferry demo: the hot-standby guide's whole path with walferry's own
# commands, on real PostgreSQL 15 clusters on 127.0.0.1, run as an unprivileged
# user on free ports. On a fresh Debian 12 machine, as root: installs what is
# missing, builds Release, then
#   walferry tls init -> serve -> setup primary --apply -> (pgbench -i) ->
#   check -> basebackup (progress line on a terminal) -> restore-base -> a standby that
#   replays WAL from the archive through `walferry get`, then streams ->
#   status of both sides -> verify -> promote,
# and ends with a table of what was verified and speed figures next to bzip2,
# pigz, zstd and rsync, measured side by side in this run.
#
#   WF_DEMO_SCALE=N   pgbench scale (default 10, about 160 MB of base backup)
#   WF_DEMO_BIN=PATH  use this walferry binary instead of building one
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_T0=$SECONDS
say() { printf '\n[%3ds] %s\n' $((SECONDS - DEMO_T0)) "$*"; }
show() { sed 's/^/    /'; }  # indents a command's output under its step

say "checking packages (scripts/install-deps.sh)"
bash "$WF_ROOT/scripts/install-deps.sh" | show
if [ -n "${WF_DEMO_BIN:-}" ]; then
  BUILT=$WF_DEMO_BIN
else
  mkdir -p "$WF_ROOT/build"
  say "building walferry (Release, build/release; the first build takes a few minutes on 2 cores)"
  wf_build release -DCMAKE_BUILD_TYPE=Release -DWALFERRY_BENCH=OFF -- walferry \
    >"$WF_ROOT/build/demo-build.log" 2>&1 || { tail -n 40 "$WF_ROOT/build/demo-build.log"; exit 1; }
  BUILT="$WF_ROOT/build/release/cli/walferry"
fi
DEMO_T1=$SECONDS
# The PostgreSQL user runs walferry as archive_command and restore_command: give
# it a copy it can reach whatever directory the checkout lives in.
export WALFERRY_BIN=$BUILT
. "$WF_ROOT/tests/e2e/lib/common.sh"
mkdir -p "$T/bin"
cp "$BUILT" "$T/bin/walferry"
chmod 755 "$T/bin/walferry"
WF="$T/bin/walferry"
ensure_pg_user

SCALE=${WF_DEMO_SCALE:-10}
CORES=$(nproc)
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
size_of() { stat -c %s "$1"; }
VERIFIED=()
verified() { VERIFIED+=("$*"); }
wait_for() {  # wait_for SECONDS WHAT COMMAND...: polls COMMAND every 0.2 s
  local limit=$1 what=$2; shift 2
  local i
  for i in $(seq 1 $((limit * 5))); do "$@" && return 0; sleep 0.2; done
  fail "timed out after ${limit}s waiting for $what"
}

# --- the receiver ----------------------------------------------------------
say "walferry tls init: a CA, the receiver's certificate and a client certificate for cluster 'main'"
"$WF" tls init "$T/tls" --cluster main | show
mkdir -p "$T/tls-client"  # what the primary gets: the CA and its own client certificate
cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-client/"
ARCHIVE="$T/archive"
RPORT=$(free_port); PORT=$(free_port); SPORT=$(free_port)
share_scratch
say "walferry serve: the receiver on 127.0.0.1:$RPORT, archive in $ARCHIVE"
as_pg "$WF" serve --root "$ARCHIVE" --listen "127.0.0.1:$RPORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
SERVE_JOB=$!
WF_PIDS+=("$SERVE_JOB")
wait_port "$RPORT"
# as_pg may run it under runuser: keep the receiver's own pid to stop it.
SERVE_PID=$(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | cut -d= -f2 | head -n 1)
WF_PIDS+=("$SERVE_PID")
head -n 1 "$T/serve.log" | show

# --- the primary -----------------------------------------------------------
say "PostgreSQL 15 primary: initdb, then walferry setup primary --apply"
P=$(pg_init prim)
as_pg "$WF" setup primary --pgdata "$P" --standby-address 127.0.0.1 --replication-user postgres \
  --auth-method trust --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-client" --archive-timeout 5 --apply \
  2>&1 | show
pg_start "$P" "$PORT" "-c max_wal_size=1GB"
say "filling the primary: pgbench -i -s $SCALE (about $((SCALE * 20)) MB of tables; archive_command ships each WAL segment)"
t0=$(now)
as_pg "$PGBIN/pgbench" -q -i -s "$SCALE" -h 127.0.0.1 -p "$PORT" -U postgres postgres \
  >"$T/pgbench.log" 2>&1 || fail "pgbench -i failed (see $T/pgbench.log)"
echo "    done in $(secs "$t0" "$(now)") s"

say "walferry check: the running configuration, the receiver, the certificate, and a forced WAL switch"
as_pg "$WF" check --pgdata "$P" -U postgres >"$T/check.txt" 2>&1 || { show <"$T/check.txt"; fail "walferry check failed"; }
show <"$T/check.txt"
verified "walferry check: $(tail -n 1 "$T/check.txt") (the switched segment read back from the receiver)"

# --- base backup -----------------------------------------------------------
say "walferry basebackup: pg_basebackup -Ft -c fast, compressed in parallel and shipped to the receiver"
BB_PROGRESS=()
[ -t 2 ] && BB_PROGRESS=(--progress)
t0=$(now)
as_pg "$WF" basebackup --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-client" --name base.tar \
  "${BB_PROGRESS[@]}" -h 127.0.0.1 -p "$PORT" -U postgres -c fast 2>&1 || fail "walferry basebackup failed"
t1=$(now)
BB_SECS=$(secs "$t0" "$t1")
STORED_BASE=$(ls "$ARCHIVE"/main/files/base.tar* | head -n 1)
"$WF" decompress <"$STORED_BASE" >"$T/base.tar" || fail "the stored base backup does not decompress"
BASE_SIZE=$(size_of "$T/base.tar")
awk -v i="$BASE_SIZE" -v o="$(size_of "$STORED_BASE")" -v s="$BB_SECS" -v f="$(basename "$STORED_BASE")" 'BEGIN {
  printf "    %.1f MB tar in %.2f s (%.1f MB/s), durable on the receiver as %s (%.1f MB)\n", i/1e6, s, i/1e6/s, f, o/1e6 }'
verified "base backup durable on the receiver ($(basename "$STORED_BASE")), checksums verified on decompression"

# WAL written after the backup reaches only the archive: the standby must fetch it.
say "more writes on the primary (pgbench -t 300), then pg_switch_wal: this WAL exists only in the archive"
as_pg "$PGBIN/pgbench" -n -t 300 -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >>"$T/pgbench.log" 2>&1 \
  || fail "pgbench"
psql_at "$PORT" "insert into pgbench_history(tid,bid,aid,delta,mtime) values (1,1,1,0,now())" >/dev/null
LAST=$(psql_at "$PORT" "select pg_walfile_name(pg_switch_wal())")
archived_last() { [ "$(psql_at "$PORT" "select coalesce(last_archived_wal,'') >= '$LAST' from pg_stat_archiver")" = t ]; }
wait_for 60 "PostgreSQL to archive $LAST" archived_last
echo "    $LAST archived by walferry push"

# --- the standby -----------------------------------------------------------
say "walferry restore-base: unpack base.tar from the archive into an empty data directory, as a standby"
S="$T/pg-stby"
as_pg "$WF" restore-base base.tar --from "$ARCHIVE" --pgdata "$S" \
  --primary-conninfo "host=127.0.0.1 port=$PORT user=postgres application_name=standby1" 2>&1 | show
say "starting the standby: it replays WAL from the archive (walferry get), then streams from the primary"
pg_start "$S" "$SPORT"
streaming() { [ "$(psql_at "$PORT" "select state from pg_stat_replication where application_name='standby1'")" = streaming ]; }
wait_for 120 "the standby to stream" streaming
grep -q "restored log file \"$LAST\" from archive" "$S.log" || fail "the standby did not replay $LAST from the archive"
RESTORED=$(grep -c 'restored log file ".*" from archive' "$S.log")
echo "    replayed $RESTORED WAL file(s) from the archive, now streaming"
verified "standby replayed $RESTORED WAL file(s) from the archive through walferry get (up to $LAST)"
verified "standby streaming from the primary (pg_stat_replication.state = streaming)"
as_pg "$PGBIN/pgbench" -n -t 200 -c 2 -h 127.0.0.1 -p "$PORT" -U postgres postgres >>"$T/pgbench.log" 2>&1 \
  || fail "pgbench"
TARGET=$(psql_at "$PORT" "select pg_current_wal_lsn()")
caught_up() { [ "$(psql_at "$SPORT" "select pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '$TARGET') >= 0")" = t ]; }
wait_for 60 "the standby to replay $TARGET" caught_up
Q="select count(*), sum(abalance) from pgbench_accounts union all select count(*), sum(delta) from pgbench_history"
[ "$(psql_at "$PORT" "$Q")" = "$(psql_at "$SPORT" "$Q")" ] || fail "the standby's data differs from the primary's"
verified "standby's pgbench tables identical to the primary's ($(psql_at "$SPORT" "select count(*) from pgbench_accounts") accounts)"

# --- status and verify -----------------------------------------------------
say "walferry status on the primary"
as_pg "$WF" status --pgdata "$P" -U postgres 2>&1 | show
FAILED=$(psql_at "$PORT" "select failed_count from pg_stat_archiver")
ARCHIVED=$(psql_at "$PORT" "select archived_count from pg_stat_archiver")
[ "$FAILED" = 0 ] || fail "archive_command failed $FAILED time(s): $(tail -5 "$P.log")"
verified "archive_command: $ARCHIVED segment(s) archived by walferry push, 0 failures"
say "walferry status on the receiver's side (the standby and its archive)"
as_pg "$WF" status --pgdata "$S" -U postgres --root "$ARCHIVE" 2>&1 | show
say "walferry verify: every archived file read in full, checksums and page headers checked"
as_pg "$WF" verify --root "$ARCHIVE" 2>&1 | show
verified "walferry verify: every file's checksums and headers good, no gap in the WAL sequence"

# --- failover --------------------------------------------------------------
say "walferry promote: the standby becomes a primary"
as_pg "$WF" promote --pgdata "$S" 2>&1 | show
psql_at "$SPORT" "create table after_failover(x int); insert into after_failover values (42)"
[ "$(psql_at "$SPORT" "select x from after_failover")" = 42 ] || fail "the promoted standby does not take writes"
verified "promoted standby takes writes"
pg_stop "$S"

# --- speed next to the peers -----------------------------------------------
say "compressing the $(awk -v n="$BASE_SIZE" 'BEGIN { printf "%.0f", n / 1e6 }') MB base backup tar: walferry next to bzip2, pigz and zstd ($CORES cores)"
ROWS=(
  "bzip2 -9|bzip2 -9 -c|bzip2 -dc"
  "pigz -p$CORES -6|pigz -p $CORES -6 -c|pigz -dc"
  "zstd -T$CORES -3|zstd -q -T$CORES -3 -c|zstd -q -dc"
  "walferry --gzip -6|$WF compress --gzip -6 -p $CORES|$WF decompress"
  "walferry --zstd -3|$WF compress --zstd -3 -p $CORES|$WF decompress"
)
declare -A C_SECS OUT_SIZE
printf '    %-20s %8s %7s %8s %10s %8s %10s\n' "compressor" "out MB" "ratio" "comp s" "comp MB/s" "dec s" "dec MB/s"
for row in "${ROWS[@]}"; do
  IFS='|' read -r label comp decomp <<<"$row"
  t0=$(now); $comp <"$T/base.tar" >"$T/out.bin" || fail "$label failed"; t1=$(now)
  $decomp <"$T/out.bin" >"$T/back.tar" || fail "$label: decompression failed"; t2=$(now)
  cmp -s "$T/base.tar" "$T/back.tar" || fail "$label: round trip is not byte-identical"
  osz=$(size_of "$T/out.bin"); cs=$(secs "$t0" "$t1"); ds=$(secs "$t1" "$t2")
  C_SECS[$label]=$cs; OUT_SIZE[$label]=$osz
  awk -v l="$label" -v i="$BASE_SIZE" -v o="$osz" -v c="$cs" -v d="$ds" 'BEGIN {
    printf "    %-20s %8.1f %7.2f %8.2f %10.1f %8.2f %10.1f\n", l, o/1e6, i/o, c, i/1e6/c, d, i/1e6/d }'
  rm -f "$T/out.bin" "$T/back.tar"
done
verified "every compressor's round trip byte-identical (cmp)"

# archive_command one call per segment: walferry push to a second, empty
# receiver, next to rsync -a --fsync into a local directory (rsync without ssh:
# its best case; the guide runs it over ssh, which costs 0.5-1.8 s per call here).
say "archive_command speed: the primary's real WAL segments, one call each, walferry push next to rsync"
mkdir -p "$T/walsrc"
mapfile -t SEGMENTS < <(cd "$ARCHIVE/main/wal" && ls | sed -E 's/\.(zst|gz)$//' | grep -E '^[0-9A-F]{24}$' | sort)
for seg in "${SEGMENTS[@]}"; do
  "$WF" get "$seg" "$T/walsrc/$seg" --from "$ARCHIVE" --cluster main --prefetch 0 || fail "walferry get $seg failed"
done
RPORT2=$(free_port)
"$WF" serve --root "$T/archive2" --listen "127.0.0.1:$RPORT2" --tls-dir "$T/tls" >"$T/serve2.log" 2>&1 &
SERVE2_PID=$!
WF_PIDS+=("$SERVE2_PID")
wait_port "$RPORT2"
t0=$(now)
for seg in "${SEGMENTS[@]}"; do
  "$WF" push "$T/walsrc/$seg" --to "127.0.0.1:$RPORT2" --tls-dir "$T/tls-client" || fail "walferry push $seg failed"
done
t1=$(now)
PUSH_SECS=$(secs "$t0" "$t1")
"$WF" push "$T/walsrc/${SEGMENTS[0]}" --to "127.0.0.1:$RPORT2" --tls-dir "$T/tls-client" \
  || fail "re-push of an identical segment failed"
mkdir -p "$T/rsync-dst"
t0=$(now)
for seg in "${SEGMENTS[@]}"; do rsync -a --fsync "$T/walsrc/$seg" "$T/rsync-dst/" || fail "rsync failed"; done
t1=$(now)
RSYNC_SECS=$(secs "$t0" "$t1")
for seg in "${SEGMENTS[@]}"; do
  "$WF" get "$seg" "$T/back.seg" --from "$T/archive2" --cluster main --prefetch 0 && cmp -s "$T/back.seg" "$T/walsrc/$seg" \
    || fail "pushed segment $seg is not byte-identical"
done
kill "$SERVE2_PID" 2>/dev/null || true
wait "$SERVE2_PID" 2>/dev/null || true
WAL_BYTES=$(du -cb "${SEGMENTS[@]/#/$T/walsrc/}" | tail -n 1 | cut -f1)
STORED_BYTES=$(du -cb "$T/archive2"/main/wal/* | tail -n 1 | cut -f1)
N=${#SEGMENTS[@]}
printf '    %-34s %9s %8s %12s %10s\n' "archive_command" "segments" "wall s" "segments/s" "stored MB"
awk -v n="$N" -v s="$PUSH_SECS" -v b="$STORED_BYTES" 'BEGIN { printf "    %-34s %9d %8.2f %12.1f %10.1f\n", "walferry push (TLS, zstd, durable)", n, s, n/s, b/1e6 }'
awk -v n="$N" -v s="$RSYNC_SECS" -v b="$WAL_BYTES" 'BEGIN { printf "    %-34s %9d %8.2f %12.1f %10.1f\n", "rsync -a --fsync (local, no ssh)", n, s, n/s, b/1e6 }'
verified "$N pushed segments byte-identical on a second receiver; an identical re-push exits 0"

pg_stop "$P"
kill "$SERVE_PID" 2>/dev/null || true  # SIGTERM: the receiver finishes and exits
wait "$SERVE_JOB" 2>/dev/null || true

# --- summary ---------------------------------------------------------------
say "summary"
echo "  verified:"
for v in "${VERIFIED[@]}"; do echo "    ✓ $v"; done
echo "  speed, measured side by side in this run:"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / a }'; }
printf '    %-44s %s\n' "walferry --gzip -6 vs pigz -p$CORES -6:" \
  "$(ratio "${C_SECS["walferry --gzip -6"]}" "${C_SECS["pigz -p$CORES -6"]}")x the speed, $(ratio "${OUT_SIZE["pigz -p$CORES -6"]}" "${OUT_SIZE["walferry --gzip -6"]}")x the size"
printf '    %-44s %s\n' "walferry --zstd -3 vs bzip2 -9:" \
  "$(ratio "${C_SECS["walferry --zstd -3"]}" "${C_SECS["bzip2 -9"]}")x the speed, $(ratio "${OUT_SIZE["bzip2 -9"]}" "${OUT_SIZE["walferry --zstd -3"]}")x the size"
printf '    %-44s %s\n' "walferry --zstd -3 vs zstd -T$CORES -3:" \
  "$(ratio "${C_SECS["walferry --zstd -3"]}" "${C_SECS["zstd -T$CORES -3"]}")x the speed, $(ratio "${OUT_SIZE["zstd -T$CORES -3"]}" "${OUT_SIZE["walferry --zstd -3"]}")x the size"
printf '    %-44s %s\n' "walferry push vs rsync -a --fsync (local):" \
  "$(ratio "$PUSH_SECS" "$RSYNC_SECS")x the segments/s, $(ratio "$WAL_BYTES" "$STORED_BYTES")x the bytes stored"
printf '    %-44s %s\n' "walferry basebackup:" \
  "$(awk -v i="$BASE_SIZE" -v s="$BB_SECS" 'BEGIN { printf "%.1f MB/s, pg_basebackup to durable on the receiver", i/1e6/s }')"
echo "  (size: walferry's bytes over the peer's; below 1 means walferry's output is smaller)"
echo
echo "demo done in $((SECONDS - DEMO_T0)) s ($((SECONDS - DEMO_T1)) s after the build)."
