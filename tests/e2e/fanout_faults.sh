#!/usr/bin/env bash
# Quorum fan-out failure cases, with real PostgreSQL 15 segments (1 MiB) and
# two TLS receivers A and B:
#  - --quorum 2 with B stopped: non-zero, "1 of 2 durable", nothing claimed;
#  - B holding other content under a name: non-zero (exists-different) although
#    A made it durable and the quorum (1) is met; B's original kept;
#  - a full backlog (--backlog-max 2): loud non-zero, nothing lost (A has the
#    file, the entries stay; after B returns the retried push drains them);
#  - a source gone from disk by the time B returns: fetched from A (FETCH) and
#    shipped on to B, byte-identical;
#  - `walferry agent` with both targets drains the backlog by itself;
#  - `send FILE` to both receivers.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/fanout.sh"
grep -q -- --quorum <<<"$("$WF" push --help 2>/dev/null)" || skip "push has no --quorum"
ensure_pg_user
fo2_setup
A="127.0.0.1:${RCV_PORT[A]}"
B="127.0.0.1:${RCV_PORT[B]}"
BL="$T/bl"

PGDATA=$(pg_init main --wal-segsize=1)
PGPORT=$(free_port)
pg_start "$PGDATA" "$PGPORT" -c wal_level=replica -c wal_keep_size=1GB
switch_segments "$PGPORT" 10
pg_stop "$PGDATA"
mkdir -p "$T/wal"
mapfile -t SEGS < <(ls "$PGDATA/pg_wal" | grep -E '^[0-9A-F]{24}$' | sort | head -9)
[ "${#SEGS[@]}" -eq 9 ] || fail "expected 9 segments, got ${#SEGS[@]}"
for s in "${SEGS[@]}"; do cp "$PGDATA/pg_wal/$s" "$T/wal/$s"; done
push() { "$WF" push --config "$T/fan.conf" --backlog-dir "$BL" "$@"; }
lacking() { "$WF" status --backlog-dir "$BL" --json | python3 -c '
import json, sys
t = {x["target"]: x["lacking"] for x in json.load(sys.stdin)["targets"]}
print(t.get(sys.argv[1], 0))' "$1"; }

# --- quorum 2 with B down: non-zero, nothing claimed
fo2_stop B
rc=0; push --quorum 2 "$T/wal/${SEGS[0]}" 2>"$T/q2.err" || rc=$?
[ "$rc" -eq 5 ] || { cat "$T/q2.err" >&2; fail "quorum 2 with B down: rc $rc, want 5 (network)"; }
grep -q "1 of 2 targets durable, quorum 2" "$T/q2.err" || { cat "$T/q2.err" >&2; fail "quorum message"; }
[ "$(lacking "$B")" -eq 0 ] || fail "a failed push must not leave a backlog entry claiming the quorum"
note "quorum 2, one down: rc $rc: $(head -1 "$T/q2.err")"
fo2_receiver B
push --quorum 2 "$T/wal/${SEGS[0]}" || fail "quorum 2 with both up"
stored_identical "$T/root-B" "${SEGS[0]}" "$T/wal/${SEGS[0]}" || fail "B lacks ${SEGS[0]}"

# --- conflict on B: never hidden by the quorum
mkdir -p "$T/other"
cp "$T/wal/${SEGS[1]}" "$T/other/${SEGS[1]}"
printf 'X' | dd of="$T/other/${SEGS[1]}" bs=1 seek=100000 conv=notrunc status=none
"$WF" push --to "$B" --tls-dir "$T/tls-main" "$T/other/${SEGS[1]}" || fail "placing the other content on B"
rc=0; push --quorum 1 "$T/wal/${SEGS[1]}" 2>"$T/conflict.err" || rc=$?
[ "$rc" -eq 4 ] || { cat "$T/conflict.err" >&2; fail "conflict on B with quorum met on A: rc $rc, want 4"; }
grep -q "conflict" "$T/conflict.err" || fail "conflict message"
stored_identical "$T/root-A" "${SEGS[1]}" "$T/wal/${SEGS[1]}" || fail "A should hold ${SEGS[1]}"
stored_identical "$T/root-B" "${SEGS[1]}" "$T/other/${SEGS[1]}" || fail "B's original must be kept"
note "conflict: rc $rc: $(grep -m1 conflict "$T/conflict.err")"

# --- backlog full: loud, nothing lost
fo2_stop B
push --quorum 1 --backlog-max 2 "$T/wal/${SEGS[2]}" || fail "push 2 with B down, quorum 1"
push --quorum 1 --backlog-max 2 "$T/wal/${SEGS[3]}" || fail "push 3 with B down, quorum 1"
rc=0; push --quorum 1 --backlog-max 2 "$T/wal/${SEGS[4]}" 2>"$T/full.err" || rc=$?
[ "$rc" -eq 7 ] && grep -q "full" "$T/full.err" || { cat "$T/full.err" >&2; fail "full backlog: rc $rc, want 7"; }
[ "$(lacking "$B")" -eq 2 ] || fail "the backlog must keep its 2 entries"
for i in 2 3 4; do stored_identical "$T/root-A" "${SEGS[$i]}" "$T/wal/${SEGS[$i]}" || fail "A lacks ${SEGS[$i]}"; done
note "backlog full: rc $rc: $(head -1 "$T/full.err")"
fo2_receiver B
push --quorum 1 --backlog-max 2 "$T/wal/${SEGS[4]}" || fail "retried push after B returned"
[ "$(lacking "$B")" -eq 0 ] || fail "backlog not drained by the retried push"
for i in 2 3 4; do stored_identical "$T/root-B" "${SEGS[$i]}" "$T/wal/${SEGS[$i]}" || fail "B lacks ${SEGS[$i]}"; done

# --- the source is gone when B returns: fetched from A
fo2_stop B
mkdir -p "$T/gone"
cp "$T/wal/${SEGS[5]}" "$T/gone/${SEGS[5]}"
push --quorum 1 "$T/gone/${SEGS[5]}" || fail "push with B down"
rm "$T/gone/${SEGS[5]}"
fo2_receiver B
push --quorum 1 "$T/wal/${SEGS[6]}" 2>"$T/fetch.err" || { cat "$T/fetch.err" >&2; fail "push after B returned"; }
stored_identical "$T/root-B" "${SEGS[5]}" "$T/wal/${SEGS[5]}" || { cat "$T/fetch.err" >&2; fail "${SEGS[5]} not fetched from A onto B"; }
[ "$(lacking "$B")" -eq 0 ] || fail "entry of the fetched file not cleared"
note "a recycled source was fetched from A and shipped to B"

# --- the agent drains by itself
fo2_stop B
push --quorum 1 "$T/wal/${SEGS[7]}" || fail "push with B down"
[ "$(lacking "$B")" -eq 1 ] || fail "one entry expected"
fo2_receiver B
"$WF" agent --config "$T/fan.conf" --backlog-dir "$BL" --pgdata "$PGDATA" --rescan-ms 200 >"$T/agent.log" 2>&1 &
AG=$!
WF_PIDS+=("$AG")
for _ in $(seq 1 100); do [ "$(lacking "$B")" -eq 0 ] && break; sleep 0.1; done
[ "$(lacking "$B")" -eq 0 ] || fail "the agent did not drain the backlog in 10 s"
kill "$AG"; wait "$AG" 2>/dev/null || true
stored_identical "$T/root-B" "${SEGS[7]}" "$T/wal/${SEGS[7]}" || fail "B lacks ${SEGS[7]} after the agent"
note "the agent drained the backlog"

# --- send to both
head -c 300000 /dev/urandom >"$T/blob.bin"
"$WF" send --config "$T/fan.conf" --backlog-dir "$BL" "$T/blob.bin" --name blob.bin || fail "send to two"
for r in A B; do
  zstd -qdc "$T/root-$r/main/files/blob.bin.zst" | cmp -s - "$T/blob.bin" || fail "blob.bin on $r"
done
rc=0; "$WF" send --config "$T/fan.conf" --backlog-dir "$BL" - --name x.bin </dev/null 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "send - to two targets should be a usage error (rc $rc)"
echo "PASS: fanout_faults"
