#!/usr/bin/env bash
# Base backup shipping: a live `pg_basebackup -Ft -D - -X fetch` stream of a
# pgbench database (scale SCALE, default 50 ~ 750 MB) sent by
#   walferry send - --name base.tar   (TLS 1.3, parallel zstd, receiver fsyncs)
#   pigz -p N | ssh cat > base.tar.gz  (own sshd on 127.0.0.1, no fsync)
#   zstd -T0 -3 | ssh cat > base.tar.zst
# next to pg_basebackup > /dev/null (the source's own speed). Median of RUNS (default 3).
# Usage: WALFERRY_BIN=build/cli/walferry bench/send_e2e.sh [SCALE] [RUNS]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../tests/e2e/lib/common.sh"
. "$HERE/lib/sshd.sh"
SCALE=${1:-50}
RUNS=${2:-3}
ensure_pg_user

PGDATA=$(pg_init bench)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT"
note "pgbench -i -s $SCALE"
as_pg "$PGBIN/pgbench" -h 127.0.0.1 -p "$PGPORT" -U postgres -i -s "$SCALE" postgres >"$T/pgbench.log" 2>&1
psql_at "$PGPORT" "checkpoint" >/dev/null
share_scratch
BB="$PGBIN/pg_basebackup -h 127.0.0.1 -p $PGPORT -U postgres -Ft -D - -X fetch -c fast"

# receiver
"$WF" tls init "$T/tls" --cluster main >/dev/null
WPORT=$(free_port)
"$WF" serve --root "$T/wf-root" --listen "127.0.0.1:$WPORT" --tls-dir "$T/tls" 2>"$T/serve.log" &
WF_PIDS+=("$!")
wait_port "$WPORT"

# sshd
SSHD=$T/ssh
mkdir -p "$T/ssh-dst"
start_loopback_sshd "$SSHD"
read -ra SSH <<<"$SSH root@127.0.0.1"

declare -A TIMES SIZE
run() {  # NAME RUN_INDEX COMMAND(string): times one run
  local name=$1 i=$2 cmd=$3 t0 t1
  t0=$(date +%s.%N)
  bash -o pipefail -c "$cmd" || fail "$name failed"
  t1=$(date +%s.%N)
  TIMES[$name]+="$(echo "$t1 - $t0" | bc -l) "
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for i in $(seq 1 "$RUNS"); do
  run source "$i" "runuser -u $WF_PG_USER -- $BB >/dev/null"
  run walferry "$i" "runuser -u $WF_PG_USER -- $BB | $WF send - --name base-$i.tar --to 127.0.0.1:$WPORT --tls-dir $T/tls 2>>$T/send.log"
  run pigz_ssh "$i" "runuser -u $WF_PG_USER -- $BB | pigz -p $(nproc) | ${SSH[*]} 'cat > $T/ssh-dst/base-$i.tar.gz'"
  run zstd_ssh "$i" "runuser -u $WF_PG_USER -- $BB | zstd -q -T0 -3 | ${SSH[*]} 'cat > $T/ssh-dst/base-$i.tar.zst'"
done
RAW=$(runuser -u "$WF_PG_USER" -- $BB | wc -c)
SIZE[source]=$RAW
SIZE[walferry]=$(stat -c %s "$T/wf-root/main/files/base-1.tar.zst")
SIZE[pigz_ssh]=$(stat -c %s "$T/ssh-dst/base-1.tar.gz")
SIZE[zstd_ssh]=$(stat -c %s "$T/ssh-dst/base-1.tar.zst")
# walferry's copy is the backup: it decompresses to a tar of the same size.
[ "$(zstd -qdc "$T/wf-root/main/files/base-1.tar.zst" | wc -c)" -eq "$RAW" ] || fail "walferry's base-1.tar has the wrong size"

echo
echo "pg_basebackup stream of a pgbench -s $SCALE database ($((RAW >> 20)) MiB), median of $RUNS, $(nproc) cores"
printf '%-10s %9s %9s %10s %10s\n' pipeline seconds MiB/s size_MiB vs_pigz
pig=$(echo "${TIMES[pigz_ssh]}" | median)
for k in source walferry pigz_ssh zstd_ssh; do
  s=$(echo "${TIMES[$k]}" | median)
  printf '%-10s %9.2f %9.1f %10.1f %9.2fx\n' "$k" "$s" "$(echo "$RAW / 1048576 / $s" | bc -l)" \
    "$(echo "${SIZE[$k]} / 1048576" | bc -l)" "$(echo "$pig / $s" | bc -l)"
done
