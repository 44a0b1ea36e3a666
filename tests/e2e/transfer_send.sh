#!/usr/bin/env bash
# walferry send end to end with the real binary over TLS on 127.0.0.1:
#  - a file and a pipe arrive byte-identical (zstd store: stock `zstd -d` reads them;
#    raw store: plain files); re-send identical -> 0; different content -> exit 4;
#  - no progress line when stderr is not a terminal;
#  - names with ../, /, control characters are refused (exit 8), nothing written;
#  - garbage, oversized and out-of-order frames on an insecure loopback receiver
#    are refused with an ERROR frame and nothing is written.
. "$(dirname "$0")/lib/common.sh"
"$WF" serve --help >/dev/null 2>&1 || skip "serve not built"

"$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
ROOT="$T/root"
PORT=$(free_port)
"$WF" serve --root "$ROOT" --listen "127.0.0.1:$PORT" --tls-dir "$T/tls" >"$T/serve.log" 2>&1 &
SERVE_PID=$!
WF_PIDS+=("$SERVE_PID")
wait_port "$PORT"
TO=(--to "127.0.0.1:$PORT" --tls-dir "$T/tls")

# A mix of compressible and incompressible data, not a multiple of the chunk size.
python3 - "$T/file.bin" <<'PY'
import os, sys
with open(sys.argv[1], "wb") as f:
    for i in range(24):
        f.write(os.urandom(1 << 19))
        f.write((b"walferry %d " % i) * 50000)
    f.write(b"tail")
PY

# --- file
"$WF" send "$T/file.bin" --name base.tar "${TO[@]}" 2>"$T/send.err" || fail "send file: $(cat "$T/send.err")"
[ ! -s "$T/send.err" ] || fail "send printed to a non-tty stderr: $(cat "$T/send.err")"
stored="$ROOT/main/files/base.tar.zst"
[ -f "$stored" ] || fail "no $stored"
zstd -dc "$stored" | cmp - "$T/file.bin" || fail "stored base.tar differs"

# --- identical again -> 0, different -> 4 and original intact
"$WF" send "$T/file.bin" --name base.tar "${TO[@]}" 2>/dev/null || fail "re-send of identical content failed"
head -c 1000 "$T/file.bin" >"$T/other.bin"
rc=0; out=$("$WF" send "$T/other.bin" --name base.tar "${TO[@]}" 2>&1) || rc=$?
[ "$rc" -eq 4 ] || fail "different content under the same name: exit $rc ($out), want 4"
[ "$(echo "$out" | wc -l)" -eq 1 ] || fail "error is not one line: $out"
zstd -dc "$stored" | cmp - "$T/file.bin" || fail "original changed after exists-different"

# --- pipe
cat "$T/file.bin" | "$WF" send - --name piped.bin "${TO[@]}" 2>"$T/send.err" || fail "send pipe: $(cat "$T/send.err")"
zstd -dc "$ROOT/main/files/piped.bin.zst" | cmp - "$T/file.bin" || fail "stored piped.bin differs"
# stdin without --name is a usage error
rc=0; echo x | "$WF" send - "${TO[@]}" 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "send - without --name: exit $rc, want 2"

# --- config file: keys are the long option names; the command line wins; WALFERRY_CONFIG works
cat >"$T/wf.conf" <<CONF
# sender settings
to = 127.0.0.1:1          # wrong on purpose: overridden below
tls-dir = "$T/tls"
root = /ignored/by/send
CONF
"$WF" send "$T/other.bin" --name conf1.bin --config "$T/wf.conf" --to "127.0.0.1:$PORT" 2>/dev/null \
  || fail "--to on the command line did not win over the config file"
sed -i "s/^to = .*/to = 127.0.0.1:$PORT/" "$T/wf.conf"
WALFERRY_CONFIG="$T/wf.conf" "$WF" send "$T/other.bin" --name conf2.bin 2>/dev/null || fail "WALFERRY_CONFIG not used"
echo "garbage line" >>"$T/wf.conf"
rc=0; out=$("$WF" send "$T/other.bin" --name conf3.bin --config "$T/wf.conf" 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "malformed config: exit $rc ($out), want 2"
[ -f "$ROOT/main/files/conf1.bin.zst" ] && [ -f "$ROOT/main/files/conf2.bin.zst" ] || fail "config sends not stored"

# --- refused names: nothing written anywhere
before=$(find "$T" -path "$ROOT/.incoming" -prune -o -type f -print | sort | md5sum)
for bad in "../escape" "a/b" "..hidden" $'ctl\x01name' "$(printf 'x%.0s' $(seq 1 300))"; do
  rc=0; out=$("$WF" send "$T/other.bin" --name "$bad" "${TO[@]}" 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "name '$bad' accepted"
  [ "$rc" -le 125 ] || fail "exit code $rc out of range"
done
rc=0; "$WF" send "$T/other.bin" --name "../escape" "${TO[@]}" 2>/dev/null || rc=$?
[ "$rc" -eq 8 ] || fail "../escape: exit $rc, want 8 (refused)"
after=$(find "$T" -path "$ROOT/.incoming" -prune -o -type f -print | sort | md5sum)
[ "$before" = "$after" ] || fail "a refused name wrote something"
[ ! -e "$T/escape" ] && [ ! -e "$ROOT/escape" ] && [ ! -e "$ROOT/main/escape" ] || fail "path escape"

# --- unreachable receiver: exit 5, one line
rc=0; out=$("$WF" send "$T/other.bin" --name x --to "127.0.0.1:$(free_port)" --tls-dir "$T/tls" --retries 1 2>&1) || rc=$?
[ "$rc" -eq 5 ] || fail "unreachable: exit $rc ($out), want 5"

# --- raw store, insecure loopback receiver; hostile frames
RAWROOT="$T/rawroot"
IPORT=$(free_port)
"$WF" serve --root "$RAWROOT" --listen "127.0.0.1:$IPORT" --insecure-loopback --store raw >"$T/serve-raw.log" 2>&1 &
WF_PIDS+=("$!")
wait_port "$IPORT"
"$WF" send "$T/file.bin" --name plain.bin --to "127.0.0.1:$IPORT" --insecure-loopback --cluster c1 2>/dev/null \
  || fail "send to raw store"
cmp "$RAWROOT/c1/files/plain.bin" "$T/file.bin" || fail "raw store: plain file differs"
# --insecure-loopback is refused for a non-loopback address
rc=0; "$WF" send "$T/other.bin" --name x --to "192.0.2.1:7420" --insecure-loopback 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "insecure to a non-loopback address: exit $rc, want 2"

count_files() { find "$RAWROOT" -type f | wc -l; }
n0=$(count_files)
python3 - "$IPORT" <<'PY' || fail "hostile frames were not all refused"
import socket, struct, sys
port = int(sys.argv[1])
def hello(cluster=b"c1"):
    return b"WF" + bytes([1, 0]) + struct.pack("<I", 7 + len(cluster)) + struct.pack("<HIB", 1, 0, len(cluster)) + cluster
def talk(payload, expect_hello):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(payload)
    data = b""
    try:
        while True:
            b = s.recv(65536)
            if not b: break
            data += b
    except socket.timeout:
        pass
    s.close()
    if expect_hello:
        assert data[:3] == b"WF\x01", data[:16]
        data = data[8 + struct.unpack("<I", data[4:8])[0]:]
    assert data[:3] == b"WF\x08", ("no ERROR frame", data[:32])
    return data
talk(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False)                      # garbage
talk(hello() + b"WF\x04\x00" + struct.pack("<I", 0x7fffffff), True)     # 2 GiB CHUNK header
talk(hello() + b"WF\x02\x00" + struct.pack("<I", 32 + 4000), True)      # oversized OPEN
chunk = struct.pack("<QQIIQB7x", 0, 0, 3, 3, 0, 0) + b"abc"
talk(hello() + b"WF\x04\x00" + struct.pack("<I", len(chunk)) + chunk, True)  # CHUNK before OPEN
talk(hello() + b"WF\x63\x00" + struct.pack("<I", 8) + b"\0" * 8, True)  # unknown type
talk(hello(b"../x"), False)                                             # bad cluster name
print("hostile frames refused")
PY
[ "$(count_files)" -eq "$n0" ] || fail "hostile frames wrote files"
[ ! -e "$T/x" ] || fail "cluster escape"

# The receiver survived all of it.
"$WF" send "$T/other.bin" --name after.bin --to "127.0.0.1:$IPORT" --insecure-loopback --cluster c1 2>/dev/null \
  || fail "receiver unusable after hostile clients"
kill -TERM "$SERVE_PID"
for _ in $(seq 1 100); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$SERVE_PID" 2>/dev/null && fail "serve did not stop on SIGTERM"
grep -q "placed" "$T/serve.log" || fail "no per-transfer log line"
echo "transfer_send: ok"
