#!/usr/bin/env bash
# `walferry status` with and without the agent: while `walferry agent` runs on
# a real PostgreSQL 15 primary, status finds its socket (from the config file
# archive_command uses) and shows its own STATUS figures (human, --json,
# --prometheus); once it is stopped, status says "not running" and still works.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/agent.sh"
"$WF" agent --help >/dev/null 2>&1 || skip "agent not built"
ensure_pg_user
start_receiver_and_config
RPORT=$PORT
PGDATA=$(pg_init main)
PGPORT=$(free_port)
echo "archive_command = '/bin/false'" >>"$PGDATA/postgresql.conf"
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica
make_segments 2
start_agent
for _ in $(seq 1 300); do [ "$(agent_status shipped_files)" -ge 2 ] && break; sleep 0.1; done
[ "$(agent_status shipped_files)" -ge 2 ] || fail "the agent shipped nothing"

STATUS=(as_pg "$WF" status --pgdata "$PGDATA" -U postgres --config "$T/main.conf")
"${STATUS[@]}" >"$T/with.txt" || fail "status with the agent"
grep -qE "^  agent: +running \($T/run/agent.sock\)" "$T/with.txt" \
  && grep -qE '^    pid [0-9]+, shipped [0-9]+ file\(s\)' "$T/with.txt" \
  || { cat "$T/with.txt" >&2; fail "status does not show the running agent and its figures"; }
"${STATUS[@]}" --json >"$T/with.json" || fail "status --json"
python3 - "$T/with.json" <<'PY' || fail "status --json with the agent: $(cat "$T/with.json")"
import json, sys
a = json.load(open(sys.argv[1]))["server"]["agent"]
assert a["running"] is True and int(a["status"]["shipped_files"]) >= 2, a
PY
grep -qx 'walferry_agent_up 1' <<<"$("${STATUS[@]}" --prometheus)" || fail "status --prometheus: agent not up"

kill "$AGENT_PID"
for _ in $(seq 1 100); do kill -0 "$AGENT_PID" 2>/dev/null || break; sleep 0.05; done
"${STATUS[@]}" >"$T/without.txt" || fail "status without the agent"
grep -qE "^  agent: +not running \(no agent socket at $T/run/agent.sock; push works alone\)" "$T/without.txt" \
  || { cat "$T/without.txt" >&2; fail "status does not say the agent is not running"; }
pg_stop "$PGDATA"
cat "$T/with.txt" >&2
note "pg_status_agent: ok"
