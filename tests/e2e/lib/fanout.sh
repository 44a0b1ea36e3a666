# Helpers for the fan-out end-to-end tests; source after common.sh.
# fo2_setup: TLS material ($T/tls, client copy $T/tls-main), receivers A and B
# on free ports (roots $T/root-A, $T/root-B; pids RCV_PID[A|B]), the backlog
# directory $T/pgside/backlog (owned by the PostgreSQL user), $T/fan.conf.
declare -A RCV_PID RCV_PORT
fo2_receiver() {  # NAME: (re)starts receiver NAME on its port
  local n=$1
  [ -n "${RCV_PORT[$n]:-}" ] || RCV_PORT[$n]=$(free_port)
  "$WF" serve --root "$T/root-$n" --listen "127.0.0.1:${RCV_PORT[$n]}" --tls-dir "$T/tls" >>"$T/serve-$n.log" 2>&1 &
  RCV_PID[$n]=$!
  WF_PIDS+=("$!")
  wait_port "${RCV_PORT[$n]}"
}
fo2_stop() {  # NAME: stops receiver NAME by its pid and waits for it
  local n=$1
  kill "${RCV_PID[$n]}"
  wait "${RCV_PID[$n]}" 2>/dev/null || true
}
fo2_setup() {
  "$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
  mkdir -p "$T/tls-main" "$T/pgside"
  cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
  fo2_receiver A
  fo2_receiver B
  BACKLOG="$T/pgside/backlog"
  cat >"$T/fan.conf" <<CONF
to = 127.0.0.1:${RCV_PORT[A]}, 127.0.0.1:${RCV_PORT[B]}
tls-dir = $T/tls-main
backlog-dir = $BACKLOG
CONF
  share_scratch
}
# stored_identical ROOT SEG FILE: ROOT's copy of SEG decompresses to FILE's bytes.
stored_identical() {
  local f="$1/main/wal/$2.zst"
  [ -f "$f" ] && zstd -qdc "$f" | cmp -s - "$3"
}
# switch_segments PORT N: N new segments (a row, then pg_switch_wal), one psql session.
switch_segments() {
  local port=$1 n=$2 sql="set client_min_messages = warning; create table if not exists fill(a int);"
  for _ in $(seq 1 "$n"); do sql+="insert into fill values (1); select pg_switch_wal();"; done
  as_pg "$PGBIN/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres -d postgres >/dev/null <<<"$sql"
}
archived_count() { psql_at "$1" "select archived_count from pg_stat_archiver"; }
wait_archived() {  # PORT COUNT
  local got
  for _ in $(seq 1 900); do
    got=$(archived_count "$1")
    [ "$got" -ge "$2" ] && return 0
    sleep 0.1
  done
  psql_at "$1" "select * from pg_stat_archiver" >&2
  fail "only $got of $2 segments archived"
}
