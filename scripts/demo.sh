#!/usr/bin/env bash
# The walferry demo on real PostgreSQL data. On a fresh Debian 12 machine, as
# root: installs what is missing, builds Release, starts a throw-away
# PostgreSQL 15 cluster (as an unprivileged user, on its own port), fills it
# with pgbench, takes a base backup tar and compresses it with walferry next to
# pigz, bzip2 and zstd, checking every round trip byte for byte. When the
# transfer commands are built in, it also ships the base backup and real WAL
# segments to a receiver on 127.0.0.1 and verifies them.
#
#   WF_DEMO_SCALE=N   pgbench scale (default 10, about 160 MB of base backup)
#   WF_DEMO_BIN=PATH  use this walferry binary instead of building one
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bash "$WF_ROOT/scripts/install-deps.sh"
if [ -n "${WF_DEMO_BIN:-}" ]; then
  export WALFERRY_BIN=$WF_DEMO_BIN
else
  mkdir -p "$WF_ROOT/build"
  echo "building walferry (Release, build/release)..."
  wf_build release -DCMAKE_BUILD_TYPE=Release -- walferry >"$WF_ROOT/build/demo-build.log" 2>&1 \
    || { tail -n 40 "$WF_ROOT/build/demo-build.log"; exit 1; }
  export WALFERRY_BIN="$WF_ROOT/build/release/cli/walferry"
fi
# Throw-away cluster helpers shared with the end-to-end tests ($T, pg_init, ...).
. "$WF_ROOT/tests/e2e/lib/common.sh"

SCALE=${WF_DEMO_SCALE:-10}
CORES=$(nproc)
has_command() { "$WF" --help 2>/dev/null | grep -qE "^  $1( |\$)"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mb() { awk -v n="$1" 'BEGIN { printf "%.1f", n / 1e6 }'; }
size_of() { stat -c %s "$1"; }

# --- a real data set -------------------------------------------------------
echo "starting a throw-away PostgreSQL 15 cluster and running pgbench -i -s $SCALE..."
PGDIR=$(pg_init demo)
PORT=$(free_port)
# PostgreSQL hands each completed WAL segment to archive_command; a plain cp
# collects them for the push demo below.
WALSRC="$T/walsrc"
mkdir -p "$WALSRC"
chown "$WF_PG_USER" "$WALSRC" 2>/dev/null || true
pg_start "$PGDIR" "$PORT" "-c max_wal_size=1GB -c archive_mode=on" \
  "-c archive_command='cp %p $WALSRC/%f'"
as_pg "$PGBIN/pgbench" -q -i -s "$SCALE" -h 127.0.0.1 -p "$PORT" -U postgres postgres \
  >"$T/pgbench.log" 2>&1 || fail "pgbench -i failed (see $T/pgbench.log)"
BASE="$T/base.tar"
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -Ft -D - -X fetch >"$BASE" \
  2>"$T/basebackup.log" || fail "pg_basebackup failed (see $T/basebackup.log)"
IN_SIZE=$(size_of "$BASE")
echo "data set: pg_basebackup -Ft tar of a pgbench scale-$SCALE database, $(mb "$IN_SIZE") MB; $CORES cores"

# --- compression: walferry next to its peers -------------------------------
# Each row: label | compress command | decompress command (stdin -> stdout).
ROWS=(
  "bzip2 -9|bzip2 -9 -c|bzip2 -dc"
  "pigz -p$CORES -6|pigz -p $CORES -6 -c|pigz -dc"
  "zstd -T$CORES -3|zstd -q -T$CORES -3 -c|zstd -q -dc"
)
if has_command compress; then
  ROWS+=(
    "walferry --gzip -6|$WF compress --gzip -6 -p $CORES|$WF decompress"
    "walferry --zstd -3|$WF compress --zstd -3 -p $CORES|$WF decompress"
  )
else
  echo "(walferry compress is not built in yet: showing the peers only)"
fi

declare -A C_SECS OUT_SIZE
printf '\n%-22s %10s %7s %9s %9s %9s %9s\n' "compressor" "out MB" "ratio" "comp s" "comp MB/s" "decomp s" "dec MB/s"
for row in "${ROWS[@]}"; do
  IFS='|' read -r label comp decomp <<<"$row"
  out="$T/out.bin"
  t0=$(now); $comp <"$BASE" >"$out" || fail "$label failed"; t1=$(now)
  $decomp <"$out" >"$T/back.tar" || fail "$label: decompression failed"; t2=$(now)
  cmp -s "$BASE" "$T/back.tar" || fail "$label: round trip is not byte-identical"
  osz=$(size_of "$out"); cs=$(secs "$t0" "$t1"); ds=$(secs "$t1" "$t2")
  C_SECS[$label]=$cs; OUT_SIZE[$label]=$osz
  awk -v l="$label" -v i="$IN_SIZE" -v o="$osz" -v c="$cs" -v d="$ds" 'BEGIN {
    printf "%-22s %10.1f %7.2f %9.2f %9.1f %9.2f %9.1f\n", l, o/1e6, i/o, c, i/1e6/c, d, i/1e6/d }'
  rm -f "$out" "$T/back.tar"
done
echo "(every round trip verified byte-identical with cmp)"

compare() {  # compare OURS PEER
  local a=$1 b=$2
  [ -n "${C_SECS[$a]:-}" ] && [ -n "${C_SECS[$b]:-}" ] || return 0
  awk -v a="$a" -v b="$b" -v ca="${C_SECS[$a]}" -v cb="${C_SECS[$b]}" \
      -v sa="${OUT_SIZE[$a]}" -v sb="${OUT_SIZE[$b]}" 'BEGIN {
    printf "  %-20s vs %-16s %5.2fx the speed, %5.3fx the size\n", a, b, cb/ca, sa/sb }'
}
if has_command compress; then
  echo
  echo "walferry against its peers (speed: higher is better; size: lower is better):"
  compare "walferry --gzip -6" "pigz -p$CORES -6"
  compare "walferry --gzip -6" "bzip2 -9"
  compare "walferry --zstd -3" "zstd -T$CORES -3"
  compare "walferry --zstd -3" "pigz -p$CORES -6"
  compare "walferry --zstd -3" "bzip2 -9"
fi

# --- shipping: a receiver on 127.0.0.1, the base backup and real WAL -------
if has_command serve && has_command send && has_command push && has_command tls; then
  # Close the current segment and wait until PostgreSQL has archived it.
  last=$(psql_at "$PORT" "SELECT pg_walfile_name(pg_switch_wal())")
  for _ in $(seq 1 300); do [ -f "$WALSRC/$last" ] && break; sleep 0.1; done
  [ -f "$WALSRC/$last" ] || fail "PostgreSQL did not archive $last"
  mapfile -t SEGMENTS < <(cd "$WALSRC" && ls | grep -E '^[0-9A-F]{24}$' | sort)

  echo
  echo "receiver: walferry tls init + walferry serve on 127.0.0.1 (TLS 1.3, mutual certificates)"
  "$WF" tls init "$T/tls" --cluster demo >/dev/null || fail "walferry tls init failed"
  ARCHIVE="$T/archive"
  RPORT=$(free_port)
  "$WF" serve --root "$ARCHIVE" --listen "127.0.0.1:$RPORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
  WF_PIDS+=("$!")
  wait_port "$RPORT"
  TO=(--to "127.0.0.1:$RPORT" --tls-dir "$T/tls")

  # The base backup through a pipe, as `pg_basebackup -Ft -D - | walferry send -` does.
  t0=$(now)
  cat "$BASE" | "$WF" send - --name base.tar "${TO[@]}" 2>"$T/send.err" \
    || fail "walferry send failed: $(cat "$T/send.err")"
  t1=$(now)
  stored=$(ls "$ARCHIVE"/demo/files/base.tar* 2>/dev/null | head -n 1)
  [ -n "$stored" ] || fail "the receiver holds no base.tar"
  "$WF" decompress <"$stored" | cmp -s - "$BASE" || fail "stored base backup is not byte-identical"
  awk -v i="$IN_SIZE" -v o="$(size_of "$stored")" -v s="$(secs "$t0" "$t1")" -v f="$(basename "$stored")" 'BEGIN {
    printf "send base.tar: %.1f MB in %.2f s (%.1f MB/s), durable on the receiver as %s (%.1f MB), verified byte-identical\n",
      i/1e6, s, i/1e6/s, f, o/1e6 }'

  # Real WAL segments, one walferry push per segment, as archive_command runs it.
  t0=$(now)
  for seg in "${SEGMENTS[@]}"; do
    "$WF" push "$WALSRC/$seg" "${TO[@]}" 2>"$T/push.err" || fail "walferry push $seg failed: $(cat "$T/push.err")"
  done
  t1=$(now)
  bytes=0
  for seg in "${SEGMENTS[@]}"; do
    stored=$(ls "$ARCHIVE"/demo/wal/"$seg"* 2>/dev/null | head -n 1)
    [ -n "$stored" ] || fail "segment $seg missing on the receiver"
    if [ "$stored" = "$ARCHIVE/demo/wal/$seg" ]; then cmp -s "$stored" "$WALSRC/$seg"
    else "$WF" decompress <"$stored" | cmp -s - "$WALSRC/$seg"; fi || fail "segment $seg is not byte-identical"
    bytes=$((bytes + $(size_of "$WALSRC/$seg")))
  done
  awk -v n="${#SEGMENTS[@]}" -v b="$bytes" -v s="$(secs "$t0" "$t1")" 'BEGIN {
    printf "push: %d real WAL segments (%.0f MB) one call each in %.2f s: %.1f segments/s, each durable (fsync + rename + dir fsync) before exit 0, all verified byte-identical\n",
      n, b/1e6, s, n/s }'
  # The archive_command contract: the same segment again succeeds, untouched.
  "$WF" push "$WALSRC/${SEGMENTS[0]}" "${TO[@]}" 2>/dev/null || fail "re-push of an identical segment failed"
  echo "re-push of ${SEGMENTS[0]}: exit 0 (identical content, nothing rewritten)"
else
  echo
  echo "(walferry serve/send/push are not built in yet: no transfer demo)"
fi

pg_stop "$PGDIR"
echo
echo "demo done."
