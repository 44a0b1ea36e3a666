#!/usr/bin/env bash
# `walferry serve --metrics HOST:PORT`: Prometheus text on GET /metrics, as a
# scraper sees it after real transfers: transfers by cluster and outcome,
# raw and wire bytes, bytes fetched by `walferry get`, the archive's size on
# disk; 404/405/400 for other requests, and the endpoint keeps answering.
. "$(dirname "$0")/lib/common.sh"
RPORT=$(free_port); MPORT=$(free_port)
"$WF" serve --root "$T/archive" --listen "127.0.0.1:$RPORT" --insecure-loopback --metrics "127.0.0.1:$MPORT" \
  2>"$T/serve.log" &
WF_PIDS+=("$!")
wait_port "$RPORT"
wait_port "$MPORT"
grep -q "metrics on http://127.0.0.1:$MPORT/metrics" "$T/serve.log" || fail "no metrics line in the log"
scrape() { python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end="")' \
  "http://127.0.0.1:$MPORT${1:-/metrics}"; }
scrape >"$T/empty.prom" || fail "scrape before any transfer"
grep -q '^# TYPE walferry_receiver_transfers_total counter' "$T/empty.prom" || { cat "$T/empty.prom" >&2; fail "families not declared"; }

TO=(--to "127.0.0.1:$RPORT" --insecure-loopback --cluster c1)
head -c 3000000 /dev/urandom >"$T/data.bin"
"$WF" send "$T/data.bin" --name data.bin "${TO[@]}" || fail "send"
"$WF" send "$T/data.bin" --name data.bin "${TO[@]}" || fail "send again"
cp "$T/data.bin" "$T/not-a-wal-name"
"$WF" push "$T/not-a-wal-name" "${TO[@]}" 2>/dev/null && fail "push of a non-WAL name succeeded"
"$WF" get data.bin "$T/back.bin" --from "127.0.0.1:$RPORT" --insecure-loopback --cluster c1 --prefetch 0 || fail "get"
cmp -s "$T/data.bin" "$T/back.bin" || fail "get returned other bytes"
scrape >"$T/after.prom" || fail "scrape"
expect() {  # expect REGEX: a line of the exposition matches
  grep -qE "^$1\$" "$T/after.prom" || { cat "$T/after.prom" >&2; fail "no metrics line /$1/"; }
}
expect 'walferry_receiver_transfers_total\{cluster="c1",outcome="placed"\} 1'
expect 'walferry_receiver_transfers_total\{cluster="c1",outcome="identical"\} 1'
expect 'walferry_receiver_transfers_total\{cluster="c1",outcome="error"\} 1'
expect 'walferry_received_bytes_total\{cluster="c1"\} 6000000'
expect 'walferry_received_wire_bytes_total\{cluster="c1"\} [1-9][0-9]*'
expect 'walferry_receiver_fetched_bytes_total\{cluster="c1"\} 3000000'
expect 'walferry_receiver_last_transfer_timestamp_seconds\{cluster="c1"\} [0-9]{10}'
expect 'walferry_archive_bytes\{cluster="c1"\} [1-9][0-9]*'
expect '# TYPE walferry_archive_bytes gauge'

code() { python3 - "$@" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
print(s.recv(100).decode("latin-1").split(" ")[1])
PY
}
[ "$(code "$MPORT" 'GET /other HTTP/1.1\r\n\r\n')" = 404 ] || fail "GET /other is not 404"
[ "$(code "$MPORT" 'POST /metrics HTTP/1.1\r\n\r\n')" = 405 ] || fail "POST is not 405"
[ "$(code "$MPORT" 'GARBAGE\x01\r\n\r\n')" = 400 ] || fail "garbage is not 400"
scrape >/dev/null || fail "the endpoint stopped answering after bad requests"
note "cli_metrics: ok"
