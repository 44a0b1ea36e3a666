#!/usr/bin/env bash
# Quorum fan-out as PostgreSQL's archive_command, end to end: a real
# PostgreSQL 15 (1 MiB segments) archives through
#   archive_command = 'walferry push --config fan.conf --quorum 1 %p'
# to two TLS receivers. Receiver B is stopped (by pid) after 30 of 100
# segments: archiving goes on (quorum 1), `status --backlog-dir` shows what B
# lacks and that it is unreachable, `status --check` fails past the lag limit;
# B restarted, the next pushes drain the backlog (a few entries each) and,
# within a bounded time, B holds all 100 segments byte-identical to pg_wal;
# `verify --from A --from B` finds no difference, then one after a file is
# removed from B.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/fanout.sh"
grep -q -- --quorum <<<"$("$WF" push --help 2>/dev/null)" || skip "push has no --quorum"
ensure_pg_user
fo2_setup

PGDATA=$(pg_init main --wal-segsize=1)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c archive_mode=on -c wal_level=replica -c wal_keep_size=1GB \
  -c archive_timeout=0 -c "archive_command='$WF push --config $T/fan.conf --quorum 1 %p'"
base=$(archived_count "$PGPORT")

switch_segments "$PGPORT" 30
wait_archived "$PGPORT" $((base + 30))
fo2_stop B
note "receiver B stopped by pid after $(archived_count "$PGPORT") segments"
switch_segments "$PGPORT" 40
wait_archived "$PGPORT" $((base + 70))

# The gap, as status shows it (as the PostgreSQL user, who owns the backlog).
st=$(as_pg "$WF" status --backlog-dir "$BACKLOG")
echo "$st" >&2
grep -q "127.0.0.1:${RCV_PORT[B]}: lacks [0-9]* file(s)" <<<"$st" || fail "status does not show B's gap"
grep -q "127.0.0.1:${RCV_PORT[B]}: .*UNREACHABLE" <<<"$st" || fail "status does not show B unreachable"
grep -q "127.0.0.1:${RCV_PORT[A]}: has everything; reachable" <<<"$st" || fail "status: A should have everything"
lack=$(as_pg "$WF" status --backlog-dir "$BACKLOG" --json | python3 -c '
import json, sys
t = {x["target"]: x for x in json.load(sys.stdin)["targets"]}
print(t[sys.argv[1]]["lacking"], t[sys.argv[1]]["reachable"])' "127.0.0.1:${RCV_PORT[B]}")
[ "${lack% *}" -ge 38 ] || fail "B should lack about 40 segments, json says $lack"
[ "${lack#* }" = "False" ] || fail "json: B should be unreachable ($lack)"
grep -q "walferry_target_backlog_files{target=\"127.0.0.1:${RCV_PORT[B]}\"} ${lack% *}" \
  <<<"$(as_pg "$WF" status --backlog-dir "$BACKLOG" --prometheus)" \
  || fail "prometheus: B's backlog"
rc=0; as_pg "$WF" status --backlog-dir "$BACKLOG" --check --max-target-lag 0 >"$T/check.out" || rc=$?
[ "$rc" -ne 0 ] && grep -q "CRITICAL.*lacks" "$T/check.out" || fail "status --check should fail on B's lag (rc $rc)"
as_pg "$WF" status --backlog-dir "$BACKLOG" --check --max-target-lag 3600 >/dev/null || fail "--check within the limit"
note "status showed B lacking ${lack% *} segments"

fo2_receiver B
start=$(date +%s)
switch_segments "$PGPORT" 30
wait_archived "$PGPORT" $((base + 100))
# Bounded catch-up: each push drains 4 entries; a few more pushes if needed.
for _ in $(seq 1 20); do
  n=$(as_pg "$WF" status --backlog-dir "$BACKLOG" --json | python3 -c '
import json, sys; print(sum(t["lacking"] for t in json.load(sys.stdin)["targets"]))')
  [ "$n" -eq 0 ] && break
  switch_segments "$PGPORT" 1
  sleep 0.2
done
[ "$n" -eq 0 ] || fail "backlog not drained: $n entries left"
note "B caught up in $(( $(date +%s) - start )) s after its restart"

# Every segment PostgreSQL archived is on both receivers, byte-identical.
count=0
for f in "$PGDATA"/pg_wal/archive_status/*.done; do
  seg=$(basename "$f" .done)
  [[ "$seg" =~ ^[0-9A-F]{24}$ ]] || continue
  for r in A B; do
    stored_identical "$T/root-$r" "$seg" "$PGDATA/pg_wal/$seg" || fail "$seg on $r missing or different"
  done
  count=$((count + 1))
done
[ "$count" -ge 100 ] || fail "only $count segments checked"
note "$count segments on both receivers, byte-identical"
pg_stop "$PGDATA"

"$WF" verify --from "$T/root-A" --from "$T/root-B" >"$T/verify.out" || { cat "$T/verify.out" >&2; fail "verify A B"; }
victim=$(ls "$T/root-B/main/wal" | grep -E '^[0-9A-F]{24}\.zst$' | sed -n 5p)
rm "$T/root-B/main/wal/$victim"
rc=0; "$WF" verify --from "$T/root-A" --from "$T/root-B" >"$T/verify.out" || rc=$?
[ "$rc" -eq 3 ] && grep -q "missing in $T/root-B: ${victim%.zst}" "$T/verify.out" \
  || { cat "$T/verify.out" >&2; fail "verify should report ${victim%.zst} missing in B (rc $rc)"; }
echo "PASS: fanout_quorum"
