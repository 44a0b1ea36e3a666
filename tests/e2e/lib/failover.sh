# Helpers for the failover/timeline e2e tests (source after common.sh):
# a receiver, clusters that archive with `walferry push`, standbys that
# restore with `walferry get`, and checks of the archive against pg_wal.
#
#   fo_receiver                 starts `walferry serve` on a free port (RPORT, ROOT)
#   fo_primary NAME PORT [initdb args]  initdb + archive_mode=on + push; echoes the data dir
#   fo_base DIR PORT            pg_basebackup -Fp -X none of the server on PORT into DIR
#   fo_standby NAME BASE PORT [conf lines...]  copies BASE, standby.signal, restore_command
#   fo_archived PORT            waits until the server on PORT has archived all it switched
#   fo_wait_sql PORT SQL WANT   waits until SQL returns WANT on PORT (30 s)
#   fo_compare_wal PGDATA       every archived file also in PGDATA/pg_wal is byte-identical
#   fo_stored NAME              the archive's copy of NAME, decompressed, to stdout
#   fo_die_inside_segment PORT PGDATA  the primary's archived WAL ends inside segment C (set), then it dies
ROOT=$T/archive
fo_receiver() {
  RPORT=$(free_port)
  mkdir -p "$ROOT"; share_scratch
  as_pg "$WF" serve --root "$ROOT" --listen 127.0.0.1:"$RPORT" --insecure-loopback "$@" >"$T/serve.log" 2>&1 &
  WF_PIDS+=($!)
  wait_port "$RPORT"
  WF_PIDS+=($(ss -ltnpH "sport = :$RPORT" | grep -o "pid=[0-9]*" | cut -d= -f2))
  PUSH="$WF push %p --to 127.0.0.1:$RPORT --cluster main --insecure-loopback"
  GET="$WF get %f %p --from $ROOT --cluster main"
}

fo_conf() {  # DIR lines...
  local dir=$1; shift
  printf '%s\n' "$@" >>"$dir/postgresql.auto.conf"
}

fo_primary() {
  local name=$1 port=$2; shift 2
  local dir
  dir=$(pg_init "$name" "$@")
  fo_conf "$dir" "port = $port" "wal_level = replica" "archive_mode = on" \
    "archive_command = '$PUSH'" "max_wal_senders = 5" "wal_keep_size = '256MB'" \
    "restore_command = '$GET'" "wal_retrieve_retry_interval = '200ms'"
  echo "host replication postgres 127.0.0.1/32 trust" >>"$dir/pg_hba.conf"
  echo "$dir"
}

fo_base() {
  local dir=$1 port=$2
  mkdir -p "$dir"; share_scratch; chmod 0700 "$dir"
  as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$port" -U postgres -D "$dir" -Fp -X none -c fast \
    >"$T/basebackup-$(basename "$dir").log" 2>&1 || fail "pg_basebackup failed: $(cat "$T"/basebackup-*.log)"
}

fo_standby() {
  local name=$1 base=$2 port=$3; shift 3
  local dir="$T/pg-$name"
  cp -a "$base" "$dir"
  rm -f "$dir"/postmaster.pid
  touch "$dir/standby.signal"
  fo_conf "$dir" "port = $port" "recovery_target_timeline = 'latest'" "$@"
  share_scratch
  echo "$dir"
}

fo_wait_sql() {
  local port=$1 sql=$2 want=$3 got=""
  for _ in $(seq 1 150); do
    got=$(psql_at "$port" "$sql" 2>/dev/null || true)
    [ "$got" = "$want" ] && return 0
    sleep 0.2
  done
  fail "on port $port, '$sql' gave '$got', want '$want'"
}

# Switches WAL on PORT and waits until that segment is archived.
fo_switch_archived() {
  local port=$1 last
  # pg_switch_wal() returns the end of the switch record, or the segment
  # boundary when nothing was written since the last switch (then it is a
  # no-op); pg_walfile_name of either is the last completed segment. (The
  # insert position, pg_current_wal_lsn(), lies past the page header of a
  # segment not yet written, which never completes: that raced.)
  last=$(psql_at "$port" "select pg_walfile_name(pg_switch_wal())")
  fo_archived "$port" "$last"
}

# Waits until the server on PORT has archived NAME (or something newer). Fails
# when archiving makes no progress for 30 s (a stall, whatever the machine's
# speed: a sanitized build on a loaded machine archives hundreds of segments
# slowly but steadily), or after 10 minutes in all.
fo_archived() {
  local port=$1 want=$2 got seen="" still=0
  for _ in $(seq 1 3000); do
    got=$(psql_at "$port" "select coalesce(last_archived_wal,'') from pg_stat_archiver")
    if [ -n "$got" ] && { [ "$got" = "$want" ] || [ "${got:8:16}" \> "${want:8:16}" ]; }; then
      return 0
    fi
    if [ "$got" = "$seen" ]; then
      still=$((still + 1))
      [ "$still" -lt 150 ] || break
    else
      seen=$got; still=0
    fi
    sleep 0.2
  done
  fail "port $port: $want not archived (last $got, no progress for 30 s; failed $(psql_at "$port" "select failed_count, last_failed_wal from pg_stat_archiver"))"
}

fo_stored() {
  local f
  f=$(ls "$ROOT"/main/wal/"$1" "$ROOT"/main/wal/"$1".zst "$ROOT"/main/wal/"$1".gz 2>/dev/null | head -1)
  [ -n "$f" ] || return 1
  case "$f" in
    *.zst) zstd -q -d -c "$f" ;;
    *.gz) gzip -d -c "$f" ;;
    *) cat "$f" ;;
  esac
}

# Every WAL file both in the archive and in PGDATA/pg_wal is identical; echoes the count.
fo_compare_wal() {
  local dir=$1 n=0 name
  for f in "$dir"/pg_wal/*; do
    name=$(basename "$f")
    [ -f "$f" ] || continue
    case "$name" in *.ready|*.done) continue ;; esac
    fo_stored "$name" >"$T/cmp.tmp" 2>/dev/null || continue
    cmp -s "$T/cmp.tmp" "$f" || fail "archived $name differs from $dir/pg_wal/$name"
    n=$((n + 1))
  done
  echo "$n"
}

# The first page's timeline of a WAL file on stdin (xlp_tli, u32 at offset 4).
fo_first_page_tli() {
  od -A n -t u4 -j 4 -N 4 | tr -d ' '
}

# The archive's WAL of the primary on PORT ends inside segment C (global): a
# row, then one record that starts in C and ends two segments later, which is
# never archived; then the primary dies (immediate stop). A standby promoted
# on what the archive holds starts its new timeline inside C.
fo_die_inside_segment() {
  local port=$1 dir=$2 c1
  psql_at "$port" "select pg_switch_wal()" >/dev/null
  psql_at "$port" "insert into t values (1, 'last archived')"
  C=$(psql_at "$port" "select pg_walfile_name(pg_current_wal_lsn())")
  psql_at "$port" "select pg_logical_emit_message(false, 'wf', repeat('x', 36000000))" >/dev/null
  c1=$(psql_at "$port" "select pg_walfile_name(pg_current_wal_insert_lsn() - 16777216)")
  [ "${c1:16}" \> "${C:16}" ] || fail "the big record did not span segments ($C, $c1)"
  fo_archived "$port" "$c1"
  as_pg "$PGBIN/pg_ctl" -D "$dir" -m immediate stop >/dev/null
}
