#!/usr/bin/env bash
# Disk full on the receiver: its root on a 20 MiB tmpfs. Sending more than
# fits makes the sender exit non-zero with a one-line "disk full on the
# receiver" message; the temp file is cleaned up; files archived before are
# intact; after freeing space the same send succeeds.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
tls_setup

MNT="$T/small"
mkdir -p "$MNT"
mount -t tmpfs -o size=20m tmpfs "$MNT" 2>/dev/null || skip "cannot mount a tmpfs here (needs root/CAP_SYS_ADMIN)"
trap 'rc=$?; umount -l "$MNT" 2>/dev/null; (exit $rc); wf_cleanup' EXIT

ROOT="$MNT/root"
SRC="$T/src"
mkdir -p "$SRC"
make_file "$SRC/a.bin" $((6 << 20)) 1
make_file "$SRC/b.bin" $((5 << 20)) 2
make_file "$SRC/big.bin" $((7 << 20)) 3
make_file "$SRC/filler.bin" $((6 << 20)) 4
for f in a b big; do expect_file main "$f.bin" "$SRC/$f.bin"; done

RPORT=$(free_port)
start_receiver "$ROOT" "$RPORT" --tls-dir "$T/tls" --store raw
send() {  # send FILE NAME [extra]: exit code in $rc, stderr in $out
  rc=0
  out=$("$WF" send "$1" --name "$2" --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" "${@:3}" 2>&1 >/dev/null) || rc=$?
}

send "$SRC/a.bin" a.bin
[ "$rc" -eq 0 ] || fail "first send failed: $out"
send "$SRC/b.bin" b.bin
[ "$rc" -eq 0 ] || fail "second send failed: $out"
# 11 MiB used; a filler leaves ~3 MiB free, so 7 MiB cannot fit (9 MiB free without it).
cp "$SRC/filler.bin" "$MNT/filler"

for mode in file pipe; do
  if [ "$mode" = file ]; then
    send "$SRC/big.bin" big.bin
  else
    rc=0
    out=$(cat "$SRC/big.bin" | timeout 100 "$WF" send - --name big.bin --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" 2>&1 >/dev/null) || rc=$?
  fi
  note "$mode: exit $rc: $out"
  [ "$rc" -ne 0 ] || fail "$mode: sending 7 MiB into ~3 MiB of space exited 0"
  [ "$rc" -ne 124 ] || fail "$mode: send hung on a full receiver"
  [ "$rc" -le 125 ] || fail "$mode: exit code $rc"
  [ "$(echo "$out" | grep -c .)" -eq 1 ] || fail "$mode: message is not one line: $out"
  echo "$out" | grep -Eqi "disk full|no space|space left" || fail "$mode: message does not say the disk is full: $out"
  grep -qi "receiver" <<<"$out" || fail "$mode: message does not say it is the receiver's disk: $out"
  [ -z "$(final_path "$ROOT" main big.bin)" ] || fail "$mode: big.bin under its final name on a full disk"
  # The temp data is cleaned up (the receiver may keep a small manifest).
  used=$(find "$ROOT/.incoming" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
  [ "$used" -lt $((256 << 10)) ] || fail "$mode: $used bytes left in .incoming after ENOSPC"
  assert_stored "$ROOT" main a.bin "$SRC/a.bin"
  assert_stored "$ROOT" main b.bin "$SRC/b.bin"
  verify_root "$ROOT"
  kill -0 "$RECV_PID" || fail "$mode: receiver died on ENOSPC"
done

# Free space; the same send now succeeds.
rm -f "$MNT/filler"
send "$SRC/big.bin" big.bin
[ "$rc" -eq 0 ] || fail "send after freeing space failed: $out"
assert_stored "$ROOT" main big.bin "$SRC/big.bin"
assert_stored "$ROOT" main a.bin "$SRC/a.bin"
verify_root "$ROOT"
stop_receiver
echo PASS
