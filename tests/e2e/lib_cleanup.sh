#!/usr/bin/env bash
# The e2e cleanup (tests/e2e/lib/common.sh: wf_cleanup, wf_kill) stops what the
# test started and nothing else. A recorded pid may by then belong to an
# unrelated process (the sender exited, the machine reused its pid): such a
# process, which does not carry the test's WF_E2E_TAG, must survive the cleanup.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
LIB="$(cd "$(dirname "$0")" && pwd)/lib/common.sh"
cat >"$T/inner.sh" <<INNER
. "$LIB"
sleep 300 & WF_PIDS+=("\$!"); echo "\$!" >"$T/ours.pid"
# Neither a child of the inner test's shell nor tagged: an unrelated process.
bash -c 'env -u WF_E2E_TAG sleep 300 & echo \$!' >"$T/stranger.pid"
WF_PIDS+=("\$(cat "$T/stranger.pid")")
exit 0
INNER
WALFERRY_BIN=$WF bash "$T/inner.sh"
ours=$(cat "$T/ours.pid")
stranger=$(cat "$T/stranger.pid")
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
for _ in $(seq 1 50); do alive "$ours" || break; sleep 0.05; done
ours_alive=0; alive "$ours" && ours_alive=1
stranger_alive=0; alive "$stranger" && stranger_alive=1
kill "$stranger" 2>/dev/null || true  # untagged, started here: stopped by its pid
[ "$ours" != "$stranger" ] || fail "one pid for two processes"
[ "$ours_alive" = 0 ] || { kill "$ours"; fail "the cleanup left the test's own process $ours running"; }
[ "$stranger_alive" = 1 ] || fail "the cleanup killed $stranger, a process without the test's tag"
# And wf_ours itself: a grandchild with the tag is the test's, one without is not
# (a child of this shell is the test's whatever its environment).
bash -c 'sleep 300 & echo $! >"$1/tagged.pid"; env -u WF_E2E_TAG sleep 300 & echo $! >"$1/untagged.pid"' _ "$T"
tagged=$(cat "$T/tagged.pid"); untagged=$(cat "$T/untagged.pid")
ok_tagged=0; wf_ours "$tagged" && ok_tagged=1
ok_untagged=0; wf_ours "$untagged" && ok_untagged=1
kill "$tagged" "$untagged" 2>/dev/null || true
[ "$ok_tagged" = 1 ] || fail "wf_ours refuses a process the test started"
[ "$ok_untagged" = 0 ] || fail "wf_ours accepts a process without the tag"
env -u WF_E2E_TAG sleep 300 &
S=$!
wf_ours "$S" || { kill "$S"; fail "wf_ours refuses a child of the test's shell"; }
kill "$S"; wait "$S" 2>/dev/null || true
echo "PASS: cleanup kills the test's processes only"
