# pgBackRest as the benches run it (sourced after tests/e2e/lib/common.sh).
#
# pgbr_conf FILE DIR ASYNC PG1_PATH: writes FILE, a configuration for stanza
# "bench": a posix repository in DIR/repo (log, lock and spool in DIR too),
# compress-type=zst, archive-async=ASYNC (y or n), process-max=2, and the
# cluster at PG1_PATH reached on 127.0.0.1:$PGPORT as postgres. Files are
# handed to the PostgreSQL user (share_scratch).
pgbr_conf() {
  local file=$1 dir=$2 async=$3 pg1=$4
  mkdir -p "$dir/repo" "$dir/log" "$dir/lock" "$dir/spool"
  cat >"$file" <<CONF
[global]
repo1-path=$dir/repo
compress-type=zst
archive-async=$async
process-max=2
log-level-console=warn
log-level-file=off
log-path=$dir/log
lock-path=$dir/lock
spool-path=$dir/spool

[bench]
pg1-path=$pg1
pg1-port=$PGPORT
pg1-socket-path=/tmp
pg1-user=postgres
CONF
  share_scratch
}
