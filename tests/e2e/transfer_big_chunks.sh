#!/usr/bin/env bash
# --chunk-kib 16384 (the largest chunk) on incompressible data, real binary,
# real TLS sockets on 127.0.0.1, for a zstd and a gzip receiver:
#  - a file and a pipe of /dev/urandom bytes arrive byte-identical (the sender
#    sends a chunk raw when compressing does not shrink it, so no CHUNK frame
#    exceeds the wire limit);
#  - the receiver logs no protocol error and the sender made no retry.
. "$(dirname "$0")/lib/common.sh"
"$WF" serve --help >/dev/null 2>&1 || skip "serve not built"

"$WF" tls init "$T/tls" --cluster main >/dev/null || fail "tls init"
# 16 MiB + 1 MiB + a few bytes: one full 16 MiB chunk and a short last one.
head -c $((17 * 1024 * 1024 + 777)) /dev/urandom >"$T/random.bin"

for store in zstd gzip; do
  ROOT="$T/root-$store"
  PORT=$(free_port)
  "$WF" serve --root "$ROOT" --listen "127.0.0.1:$PORT" --tls-dir "$T/tls" --store "$store" \
    >"$T/serve-$store.log" 2>&1 &
  pid=$!
  WF_PIDS+=("$pid")
  wait_port "$PORT"
  TO=(--to "127.0.0.1:$PORT" --tls-dir "$T/tls" --retries 2)
  ext=$([ "$store" = zstd ] && echo zst || echo gz)

  rc=0; timeout 120 "$WF" send "$T/random.bin" --name file.bin --chunk-kib 16384 "${TO[@]}" \
    2>"$T/send-$store.err" || rc=$?
  [ "$rc" -eq 0 ] || fail "$store: send of a file with 16 MiB chunks: exit $rc: $(cat "$T/send-$store.err")"
  rc=0; cat "$T/random.bin" | timeout 120 "$WF" send - --name pipe.bin --chunk-kib 16384 "${TO[@]}" \
    2>>"$T/send-$store.err" || rc=$?
  [ "$rc" -eq 0 ] || fail "$store: send of a pipe with 16 MiB chunks: exit $rc: $(cat "$T/send-$store.err")"
  ! grep -q "retrying" "$T/send-$store.err" || fail "$store: the sender retried: $(cat "$T/send-$store.err")"
  ! grep -q "error=" "$T/serve-$store.log" || fail "$store: receiver logged an error: $(grep error= "$T/serve-$store.log")"
  for n in file.bin pipe.bin; do
    f="$ROOT/main/files/$n.$ext"
    [ -f "$f" ] || fail "$store: no $f"
    if [ "$store" = zstd ]; then zstd -qdc "$f"; else gzip -dc "$f"; fi | cmp - "$T/random.bin" \
      || fail "$store: stored $n differs (read with stock $store)"
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true
  note "$store: 16 MiB chunks of random data stored byte-identical"
done
echo "PASS transfer_big_chunks"
