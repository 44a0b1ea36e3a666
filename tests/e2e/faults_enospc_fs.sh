#!/usr/bin/env bash
# Disk full on a real small filesystem (ext4, and xfs when this kernel mounts
# it): an image made with mkfs, attached to a loop device, mounted, and
# `walferry serve --root` on it. WAL segments are pushed until the disk is
# full; then:
#   - every push that exited 0 is stored intact (checked again after an
#     unmount and a fresh mount of the filesystem);
#   - the push that did not fit (a piped send, a push with no block left)
#     exits non-zero with one
#     line saying the receiver's disk is full; nothing partial under a final
#     name; the temp data in .incoming is removed;
#   - after space is freed, the same push succeeds.
# Needs root (losetup, mount); without it: exit 77. Only the loop device this
# test attached is detached, only its own mount point unmounted (trap).
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
for c in losetup mkfs.ext4 mount umount fallocate; do
  command -v "$c" >/dev/null || skip "$c not installed (scripts/install-deps.sh installs it)"
done
[ "$(id -u)" -eq 0 ] || skip "needs root to attach a loop device and mount it"

LOOPDEV="" MNT=""
cleanup_fs() {
  if [ -n "$MNT" ] && mountpoint -q "$MNT"; then umount "$MNT" || umount -l "$MNT" || true; fi
  if [ -n "$LOOPDEV" ]; then losetup -d "$LOOPDEV" || true; fi
  LOOPDEV="" MNT=""
}
trap 'rc=$?; stop_receiver; cleanup_fs; (exit $rc); wf_cleanup' EXIT

SRC="$T/src"
mkdir -p "$SRC"
SYSID=7300000000000000077
NSEG=8
for i in $(seq 1 "$NSEG"); do
  name=$(printf '00000001000000000000%04X' "$i")
  make_wal_segment "$SRC/$name" "$name" "$SYSID"
  expect_file main "$name" "$SRC/$name"
done
make_file "$SRC/pipe.bin" $((20 << 20)) 7
expect_file main pipe.bin "$SRC/pipe.bin"

# attach FS SIZE_MB: makes $T/FS.img, attaches it, mounts it on $T/mnt-FS.
# Returns 1 (with a note) when this machine does not let us.
attach() {
  local fs=$1 size=$2 img="$T/$1.img"
  truncate -s "${size}M" "$img"
  case $fs in
    ext4) mkfs.ext4 -q -F -m 0 "$img" >/dev/null 2>&1 || { note "mkfs.ext4 failed"; return 1; } ;;
    xfs) mkfs.xfs -q -f "$img" >/dev/null 2>&1 || { note "mkfs.xfs failed"; return 1; } ;;
  esac
  LOOPDEV=$(losetup --find --show "$img" 2>/dev/null) || { LOOPDEV=""; note "losetup not permitted"; return 1; }
  MNT="$T/mnt-$fs"
  mkdir -p "$MNT"
  mount -t "$fs" "$LOOPDEV" "$MNT" 2>/dev/null || { note "cannot mount $fs on $LOOPDEV"; cleanup_fs; return 1; }
  return 0
}

avail() { df --output=avail -B1 "$MNT" | tail -1 | tr -d ' '; }

push() {  # push SEGNAME: exit code in $rc, stderr in $out
  rc=0
  out=$(timeout 120 "$WF" push "$SRC/$1" --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --retries 1 2>&1 >/dev/null) || rc=$?
}

check_full_failure() {  # check_full_failure WHAT NAME
  note "$1: exit $rc: $out"
  [ "$rc" -ne 0 ] || fail "$1 exited 0 on a full disk"
  [ "$rc" -ne 124 ] || fail "$1 hung on a full disk"
  [ "$rc" -le 125 ] || fail "$1 died by a signal ($rc)"
  [ "$(echo "$out" | grep -c .)" -eq 1 ] || fail "$1: error is not one line: $out"
  echo "$out" | grep -Eqi "disk full|no space|space left" || fail "$1: error does not say the disk is full: $out"
  grep -qi "receiver" <<<"$out" || fail "$1: error does not say it is the receiver's disk: $out"
  [ -z "$(final_path "$ROOT" main "$2")" ] || fail "$1: $2 under its final name on a full disk"
  local used
  used=$(find "$ROOT/.incoming" -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
  [ "$used" -lt $((256 << 10)) ] || fail "$1: $used bytes left in .incoming after disk full"
}

run_fs() {
  local fs=$1 size=$2
  attach "$fs" "$size" || return 1
  ROOT="$MNT/root"
  # Leave ~40 MiB: room for two segments, not three; 16 MiB more in a file
  # that is deleted later to free space.
  fallocate -l 16M "$MNT/removable"
  local keep=$((40 << 20)) a
  a=$(avail)
  [ "$a" -gt "$keep" ] && fallocate -l $((a - keep)) "$MNT/filler"
  note "$fs on $LOOPDEV: $(( $(avail) >> 20 )) MiB free before the pushes"
  RPORT=$(free_port)
  start_receiver "$ROOT" "$RPORT" --tls-dir "$T/tls" --store raw
  local acked=() i name failed_name=""
  for i in $(seq 1 "$NSEG"); do
    name=$(printf '00000001000000000000%04X' "$i")
    push "$name"
    if [ "$rc" -eq 0 ]; then
      assert_stored "$ROOT" main "$name" "$SRC/$name"
      acked+=("$name")
      continue
    fi
    failed_name=$name
    check_full_failure "$fs: push $name" "$name"
    break
  done
  [ -n "$failed_name" ] || fail "$fs: $NSEG segments fit in ~40 MiB?"
  [ "${#acked[@]}" -ge 1 ] || fail "$fs: not even one segment was archived"
  # A piped send into the full disk fails the same way.
  rc=0
  out=$(timeout 120 "$WF" send - --name pipe.bin --to "127.0.0.1:$RPORT" --tls-dir "$T/tls-main" --retries 1 \
    <"$SRC/pipe.bin" 2>&1 >/dev/null) || rc=$?
  check_full_failure "$fs: piped send" pipe.bin
  # Not a block left: the push fails at its first step (temp file, manifest), the same way.
  a=$(avail)
  [ "$a" -gt 0 ] && { fallocate -l "$a" "$MNT/last" 2>/dev/null || true; }
  for k in $(seq 1 400); do fallocate -l 256K "$MNT/last.$k" 2>/dev/null || break; done  # what xfs still had
  push "$failed_name"
  check_full_failure "$fs: push $failed_name with $(avail) bytes free" "$failed_name"
  rm -f "$MNT"/last*
  verify_root "$ROOT"
  kill -0 "$RECV_PID" || fail "$fs: receiver died on a full disk"
  # Free space: the push that failed now succeeds.
  rm -f "$MNT/removable"
  push "$failed_name"
  [ "$rc" -eq 0 ] || fail "$fs: push of $failed_name after freeing space failed: $out"
  acked+=("$failed_name")
  stop_receiver
  # Every acknowledged segment is on the filesystem itself: unmount, mount again, check.
  umount "$MNT"
  mount -t "$fs" "$LOOPDEV" "$MNT" || fail "$fs: cannot mount $LOOPDEV again"
  for name in "${acked[@]}"; do assert_stored "$ROOT" main "$name" "$SRC/$name"; done
  verify_root "$ROOT"
  note "$fs: ${#acked[@]} pushes acknowledged and intact after a remount; disk-full refusals as expected"
  cleanup_fs
  return 0
}

tls_setup
run_fs ext4 64 || skip "cannot make and mount a small ext4 here (losetup/mount not permitted)"
if command -v mkfs.xfs >/dev/null && grep -qw xfs /proc/filesystems; then
  # mkfs.xfs refuses filesystems below 300 MiB; the filler leaves the same ~40 MiB.
  run_fs xfs 320 || note "xfs: not available on this machine, tested ext4 only"
else
  note "xfs: mkfs.xfs or the kernel's xfs missing, tested ext4 only"
fi
echo PASS
