# Helpers for the fault e2e tests (tests/e2e/faults_*.sh, bench/resume_e2e.sh).
# Source after tests/e2e/lib/common.sh:
#   . "$WALFERRY_SOURCE_DIR/tests/tools/faults_lib.sh"
# Provides: PROXY (fault_proxy.py), need_transfer_commands, tls_setup,
# start_receiver/stop_receiver/kill_receiver, start_proxy/stop_proxy,
# make_file, make_wal_segment, expect_file, verify_root, stored_sha.

SRC_DIR=${WALFERRY_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PROXY="$SRC_DIR/tests/tools/fault_proxy.py"
RECV_PID=""
PROXY_PID=""

# Fails unless the binary lists serve/push/send. (It used to skip, and the
# `echo | grep -q` under pipefail once made a CI run skip faults_proxy for
# "send not available": grep -q may exit before echo has written all, and the
# pipeline's status is then echo's SIGPIPE. A here-string has no pipe.)
need_transfer_commands() {
  local help
  help=$("$WF" --help 2>&1) || fail "walferry --help failed: $help"
  for c in serve push send; do
    grep -qE "^ +$c( |\$)" <<<"$help" || fail "walferry --help does not list $c"
  done
}

# tls_setup: $T/tls (receiver: everything), $T/tls-main and $T/tls-other (one
# client certificate each), $T/tls-foreign (another CA).
tls_setup() {
  "$WF" tls init "$T/tls" --cluster main --cluster other >/dev/null || fail "tls init"
  "$WF" tls init "$T/tls-foreign" >/dev/null || fail "tls init (foreign)"
  for c in main other; do
    mkdir -p "$T/tls-$c"
    cp "$T/tls/ca.crt" "$T/tls/client-$c.crt" "$T/tls/client-$c.key" "$T/tls-$c/"
    chmod 700 "$T/tls-$c"
  done
}

# start_receiver ROOT PORT [extra serve args...]: runs `walferry serve` in the
# background (log: $T/serve.log, appended), waits for the port.
start_receiver() {
  local root=$1 port=$2; shift 2
  echo "=== serve start $(date +%T.%N)" >>"$T/serve.log"
  "$WF" serve --root "$root" --listen "127.0.0.1:$port" "$@" >>"$T/serve.log" 2>&1 &
  RECV_PID=$!
  WF_PIDS+=("$RECV_PID")
  wait_port "$port"
}

stop_receiver() {
  [ -n "$RECV_PID" ] || return 0
  kill "$RECV_PID" 2>/dev/null || true
  wait "$RECV_PID" 2>/dev/null || true
  RECV_PID=""
}

kill_receiver() {
  [ -n "$RECV_PID" ] || return 0
  wf_kill 9 "$RECV_PID"
  wait "$RECV_PID" 2>/dev/null || true
  RECV_PID=""
}

# start_proxy TARGET_PORT [fault_proxy args...]: sets PROXY_PORT; stats go to
# $T/proxy.stats when the proxy stops.
start_proxy() {
  local target=$1; shift
  rm -f "$T/proxy.port" "$T/proxy.stats"
  python3 "$PROXY" --target "127.0.0.1:$target" --port-file "$T/proxy.port" \
    --stats "$T/proxy.stats" --log "$T/proxy.log" --lifetime 300 "$@" &
  PROXY_PID=$!
  WF_PIDS+=("$PROXY_PID")
  for _ in $(seq 1 100); do [ -s "$T/proxy.port" ] && break; sleep 0.05; done
  [ -s "$T/proxy.port" ] || fail "fault proxy did not start"
  PROXY_PORT=$(cat "$T/proxy.port")
}

# stop_proxy: stops it and prints the client->server byte total.
stop_proxy() {
  [ -n "$PROXY_PID" ] || return 0
  kill "$PROXY_PID" 2>/dev/null || true
  wait "$PROXY_PID" 2>/dev/null || true  # a no-op inside $(...): poll for the stats
  for _ in $(seq 1 200); do [ -s "$T/proxy.stats" ] && break; sleep 0.05; done
  PROXY_PID=""
  [ -s "$T/proxy.stats" ] || fail "fault proxy wrote no stats"
  sed -n 's/.*c2s=\([0-9]*\).*/\1/p' "$T/proxy.stats"
}

# make_file PATH SIZE_BYTES [SEED]: incompressible, deterministic content.
make_file() {
  local path=$1 size=$2 seed=${3:-1}
  { openssl enc -aes-128-ctr -nosalt -pass "pass:wf$seed" -pbkdf2 </dev/zero 2>/dev/null || true; } \
    | head -c "$size" >"$path"
}

# make_wal_segment PATH NAME SYSID [SEGSIZE]: a file that passes the receiver's
# WAL header checks (PostgreSQL 15 magic, long header, timeline and segment
# number from NAME, system identifier SYSID), padded with pseudo-random pages.
make_wal_segment() {
  python3 - "$@" <<'EOF'
import struct, sys, random
path, name, sysid = sys.argv[1], sys.argv[2], int(sys.argv[3])
segsize = int(sys.argv[4]) if len(sys.argv) > 4 else 16 << 20
tli, log, seg = int(name[0:8], 16), int(name[8:16], 16), int(name[16:24], 16)
segno = log * (0x100000000 // segsize) + seg
pageaddr = segno * segsize
# XLogLongPageHeaderData: magic u16, info u16, tli u32, pageaddr u64, rem_len u32
# (+4 pad), sysid u64, seg_size u32, xlog_blcksz u32
hdr = struct.pack("<HHIQI4xQII", 0xD110, 0x0002, tli, pageaddr, 0, sysid, segsize, 8192)
rnd = random.Random(name)
with open(path, "wb") as f:
    f.write(hdr)
    f.write(bytes(8192 - len(hdr)))
    # Mostly compressible, like real WAL; a little randomness per page.
    page = bytearray(8192)
    for p in range(1, segsize // 8192):
        page[0:64] = rnd.randbytes(64)
        struct.pack_into("<HHIQ", page, 64, 0xD110, 0, tli, pageaddr + p * 8192)
        f.write(page)
EOF
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# expect_file CLUSTER NAME SOURCE_PATH: records the only content NAME may ever
# have under ROOT/CLUSTER/{wal,files}.
expect_file() {
  mkdir -p "$T/expected/$1"
  local s
  s=$(sha "$3")
  if [ -f "$T/expected/$1/$2" ] && [ "$(cat "$T/expected/$1/$2")" != "$s" ]; then
    fail "test bug: $2 registered twice with different content"
  fi
  echo "$s" >"$T/expected/$1/$2"
}

# stored_sha PATH: sha256 of the raw content of a stored entry (any format).
stored_sha() {
  case "$1" in
    *.zst) zstd -dcq "$1" | sha256sum | cut -d' ' -f1 ;;
    *.gz) gzip -dc "$1" | sha256sum | cut -d' ' -f1 ;;
    *) sha "$1" ;;
  esac
}

# verify_root ROOT: every file under a final name is one we sent, complete and
# identical; no stray files or symlinks in the final directories.
verify_root() {
  local root=$1 f cl base name want got
  [ -d "$root" ] || return 0
  while IFS= read -r -d '' f; do
    cl=$(basename "$(dirname "$(dirname "$f")")")
    base=$(basename "$f")
    name=${base%.zst}; name=${name%.gz}
    [ -L "$f" ] && fail "symlink under a final name: $f"
    [ -f "$T/expected/$cl/$name" ] || fail "unexpected file under a final name: $f"
    want=$(cat "$T/expected/$cl/$name")
    got=$(stored_sha "$f") || fail "cannot read stored $f"
    [ "$got" = "$want" ] || fail "WRONG CONTENT under a final name: $f"
  done < <(find "$root" -mindepth 3 -maxdepth 3 \( -path "$root/*/files/*" -o -path "$root/*/wal/*" \) \
             ! -path "$root/.incoming/*" -print0)
}

# final_path ROOT CLUSTER NAME: the stored file of NAME (any suffix), or "".
final_path() {
  local d
  for d in files wal; do
    for s in "" .zst .gz; do
      [ -f "$1/$2/$d/$3$s" ] && { echo "$1/$2/$d/$3$s"; return 0; }
    done
  done
  echo ""
}

# assert_stored ROOT CLUSTER NAME SOURCE: NAME is stored and identical to SOURCE.
assert_stored() {
  local p
  p=$(final_path "$1" "$2" "$3")
  [ -n "$p" ] || fail "$3 not stored under $1/$2"
  [ "$(stored_sha "$p")" = "$(sha "$4")" ] || fail "$p differs from $4"
}
