# Helpers for the agent's end-to-end tests; source after common.sh. They use
# $T, $WF, $PGDATA, $PGPORT, $ROOT (receiver root, zstd store, cluster "main")
# and $T/main.conf (with agent-socket = $T/run/agent.sock).
AGENT_PID=
# A TLS receiver on a free port (ROOT, PORT; its log $T/serve.log), the
# client's TLS files in $T/tls-main, $T/main.conf pointing at both and at the
# agent socket in $T/run (0700, owned by the PostgreSQL user).
start_receiver_and_config() {
  "$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
  mkdir -p "$T/tls-main"
  cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main/"
  ROOT="$T/root"
  PORT=$(free_port)
  "$WF" serve --root "$ROOT" --listen "127.0.0.1:$PORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
  WF_PIDS+=("$!")
  wait_port "$PORT"
  cat >"$T/main.conf" <<CONF
to = 127.0.0.1:$PORT
tls-dir = $T/tls-main
agent-socket = $T/run/agent.sock
CONF
  share_scratch
  as_pg mkdir -m 0700 "$T/run"
}

start_agent() {  # starts the agent as the PostgreSQL user; sets AGENT_PID
  rm -f "$T/agent.pid"
  as_pg bash -c "echo \$\$ >'$T/agent.pid'; exec '$WF' agent --config '$T/main.conf' --pgdata '$PGDATA' --rescan-ms 200 ${AGENT_ARGS:-}" \
    >>"$T/agent.log" 2>&1 &
  for _ in $(seq 1 100); do [ -s "$T/agent.pid" ] && break; sleep 0.05; done
  AGENT_PID=$(cat "$T/agent.pid")
  WF_PIDS+=("$AGENT_PID")
  # Up when it answers PING with its own pid (a dead agent's socket file may linger).
  for _ in $(seq 1 200); do
    [ "$(agent_ask PING 2>/dev/null)" = "PONG $AGENT_PID" ] && return 0
    sleep 0.05
  done
  fail "agent did not come up (see $T/agent.log)"
}
agent_ask() {  # LINE: sends one request line, prints the answer
  as_pg python3 - "$T/run/agent.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d: break
    buf += d
print(buf.decode().strip())
PY
}
agent_status() {  # KEY: one value from the agent's STATUS answer
  as_pg python3 - "$T/run/agent.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"STATUS\n")
buf = b""
while not buf.endswith(b"END\n"):
    d = s.recv(65536)
    if not d: break
    buf += d
for line in buf.decode().splitlines():
    k, _, v = line.partition(" ")
    if k == sys.argv[2]: print(v)
PY
}
make_segments() {  # N: writes and switches N segments
  for _ in $(seq 1 "$1"); do
    psql_at "$PGPORT" "create table if not exists filler(a int, b text); insert into filler select g, md5(g::text) from generate_series(1, 20000) g" >/dev/null
    psql_at "$PGPORT" "select pg_switch_wal()" >/dev/null
  done
}
ready_count() { ls "$PGDATA/pg_wal/archive_status" | grep -c '\.ready$' || true; }
wait_no_ready() {
  for _ in $(seq 1 600); do [ "$(ready_count)" -eq 0 ] && return 0; sleep 0.1; done
  fail "$(ready_count) segments still .ready"
}
verify_done() {  # every .done segment is on the receiver, identical
  local n=0 seg
  for f in "$PGDATA"/pg_wal/archive_status/*.done; do
    seg=$(basename "$f" .done)
    [[ "$seg" =~ ^[0-9A-F]{24}$ ]] || continue
    [ -f "$ROOT/main/wal/$seg.zst" ] || fail "$seg is .done but not on the receiver"
    zstd -qdc "$ROOT/main/wal/$seg.zst" | cmp -s - "$PGDATA/pg_wal/$seg" || fail "$seg differs on the receiver"
    n=$((n + 1))
  done
  echo "$n"
}

