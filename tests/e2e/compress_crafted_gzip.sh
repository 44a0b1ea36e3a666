#!/usr/bin/env bash
# Crafted gzip/zstd files whose recorded sizes lie (issue 8, point 2), under a
# 2 GB address-space limit: `walferry decompress` and `walferry get` of a
# stored entry exit non-zero (not by a signal) with a one-line error, and
# nothing is left under the destination name.
. "$(dirname "$0")/lib/common.sh"

# craft NAME KIND: writes $T/NAME
craft() {
  python3 - "$T/$1" "$2" <<'PY'
import struct, sys, zlib
path, kind = sys.argv[1], sys.argv[2]
if kind == "gz-member-4g":
    # walferry's FEXTRA "WF" field: member size 4 GiB - 1, raw size 16 MiB; 124 bytes in all.
    hdr = bytes([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3]) + struct.pack("<H", 12) + b"WF" + struct.pack("<HII", 8, 0xFFFFFFFF, 16 << 20)
    data = hdr + b"\x03\x00" * 50
elif kind == "gz-member-big":
    # member size 64 MiB for 1 raw byte (more than any deflate encoding of 1 byte).
    hdr = bytes([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3]) + struct.pack("<H", 12) + b"WF" + struct.pack("<HII", 8, 64 << 20, 1)
    data = hdr + b"\x03\x00" * 50
elif kind == "gz-raw-4g":
    # raw size 4 GiB - 1 with a small member: decoded as a stream, and corrupt.
    hdr = bytes([0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3]) + struct.pack("<H", 12) + b"WF" + struct.pack("<HII", 8, 124, 0xFFFFFFFF)
    data = hdr + b"\x03\x00" * 50
elif kind == "zst-content-huge":
    # zstd frame header claiming 2^40 content bytes and a 2 GiB window.
    data = struct.pack("<I", 0xFD2FB528) + bytes([0xE0 | 0x04, 0x58]) + struct.pack("<Q", 1 << 40) + b"\x01\x00\x00" * 30
elif kind == "zst-content-16m":
    # single-segment frame claiming 16 MiB of content, then a tiny raw block.
    data = struct.pack("<I", 0xFD2FB528) + bytes([0xA0 | 0x04]) + struct.pack("<I", 16 << 20) + b"\x09\x00\x00" + b"x" + b"\x00" * 4
else:
    raise SystemExit("unknown kind")
open(path, "wb").write(data)
PY
}

# The memory limit: `ulimit -v 2000000` (2 GB of address space). An ASan build
# cannot run under it (its shadow memory alone needs terabytes of address
# space), so there the same 2 GB limit is ASan's own: an allocation above it
# returns null, which an unbounded reservation turns into std::bad_alloc and
# an abort (exit 134), exactly as the address-space limit does.
if grep -q libasan <<<"$(ldd "$WF" 2>/dev/null)"; then
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=2000:allocator_may_return_null=1"
  limit_memory() { exec "$@"; }
else
  limit_memory() { ulimit -v 2000000; exec "$@"; }
fi

# check_fails WHAT CMD...: exit 3 (corrupt input), never a signal, one line on stderr.
check_fails() {
  local what=$1; shift
  local rc=0
  (limit_memory "$@") >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -ne 0 ] || fail "$what: exit 0"
  [ "$rc" -lt 125 ] || fail "$what: exit $rc (signal or crash): $(cat "$T/err")"
  [ "$rc" -eq 3 ] || fail "$what: exit $rc, want 3 (corrupt): $(cat "$T/err")"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "$what: not a one-line error: $(cat "$T/err")"
  note "$what: exit $rc: $(cat "$T/err")"
}

for kind in gz-member-4g gz-member-big gz-raw-4g zst-content-huge zst-content-16m; do
  ext=${kind%%-*}; [ "$ext" = gz ] || ext=zst
  craft "crafted-$kind.$ext" "$kind"
  [ "$kind" != gz-member-4g ] || [ "$(stat -c %s "$T/crafted-$kind.$ext")" -eq 124 ] || fail "crafted file is not 124 bytes"
  check_fails "decompress $kind" "$WF" decompress "$T/crafted-$kind.$ext"
  check_fails "decompress $kind from stdin" sh -c "exec \"\$0\" decompress - <\"\$1\"" "$WF" "$T/crafted-$kind.$ext"

  # The same bytes as a stored WAL segment, read by restore_command.
  ROOT="$T/root-$kind"
  mkdir -p "$ROOT/main/wal"
  cp "$T/crafted-$kind.$ext" "$ROOT/main/wal/000000010000000000000001.$ext"
  check_fails "get $kind" "$WF" get 000000010000000000000001 "$T/restored-$kind" --root "$ROOT" --prefetch 0
  [ ! -e "$T/restored-$kind" ] || fail "get $kind left a file under the destination name"
done
echo "PASS compress_crafted_gzip"
