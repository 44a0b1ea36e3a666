#!/usr/bin/env bash
# Certificates over their life, with the real binary over real TLS: an expired
# client certificate (receiver logs which one and when, the sender says its
# own certificate expired), an expired server certificate (the sender says
# which and when), `tls init --renew` + SIGHUP without a restart, `tls init
# --revoke` + SIGHUP while a transfer is open (it completes; the revoked
# certificate is refused afterwards), and adding a cluster again.
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/../tools/faults_lib.sh"
need_transfer_commands
command -v openssl >/dev/null || skip "openssl CLI missing"
tls_setup

# past_cert CA_DIR CN EKU OUT_BASE [SAN]: OUT_BASE.crt/.key, signed by CA_DIR's
# CA with a validity window in the past (2020-01-01 .. 2020-01-02).
past_cert() {
  local ca=$1 cn=$2 eku=$3 out=$4 san=${5:-}
  local x="$T/pastca-$RANDOM"
  mkdir -p "$x"; : >"$x/index.txt"; echo 01 >"$x/serial"
  cat >"$x/ca.cnf" <<EOF
[ ca ]
default_ca = wf
[ wf ]
database = $x/index.txt
new_certs_dir = $x
serial = $x/serial
policy = pol
default_md = default
x509_extensions = ext
unique_subject = no
[ pol ]
commonName = supplied
organizationName = optional
[ ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = $eku
${san:+subjectAltName = $san}
EOF
  openssl genpkey -algorithm ed25519 -out "$out.key" 2>/dev/null
  chmod 600 "$out.key"
  openssl req -new -key "$out.key" -subj "/O=walferry/CN=$cn" -out "$x/r.csr" 2>/dev/null
  openssl ca -batch -config "$x/ca.cnf" -cert "$ca/ca.crt" -keyfile "$ca/ca.key" -in "$x/r.csr" \
    -out "$out.crt" -startdate 20200101000000Z -enddate 20200102000000Z -notext >/dev/null 2>&1 \
    || fail "openssl ca could not make an expired certificate"
}

SRC="$T/src"; mkdir -p "$SRC"
make_file "$SRC/a.bin" 300000 1
make_file "$SRC/long.bin" 1000000 2
ROOT="$T/root"
for c in main other; do expect_file "$c" a.bin "$SRC/a.bin"; done
expect_file other long.bin "$SRC/long.bin"

one_line() {  # one_line FILE: the command's error is one line
  [ "$(grep -c . "$1")" -eq 1 ] || fail "error is not one line: $(cat "$1")"
}

# --- 1. an expired client certificate ----------------------------------------------------------
mkdir -p "$T/tls-exp"; cp "$T/tls/ca.crt" "$T/tls-exp/"; chmod 700 "$T/tls-exp"
past_cert "$T/tls" main clientAuth "$T/tls-exp/client-main"
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --tls-dir "$T/tls" --store raw
if "$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-exp" >"$T/exp.out" 2>&1; then
  fail "expired client certificate accepted"
fi
note "sender: $(cat "$T/exp.out")"
one_line "$T/exp.out"
grep -q 'refused our client certificate "main": it expired at 2020-01-02 00:00:00 UTC' "$T/exp.out" \
  || fail "sender error does not say its certificate expired and when"
grep -q 'client certificate of 127.0.0.1:[0-9]* refused: certificate "main" expired at 2020-01-02 00:00:00 UTC' \
  "$T/serve.log" || fail "receiver log does not name the expired client certificate"
"$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-main" >>"$T/send.log" 2>&1 \
  || fail "valid client refused"
stop_receiver

# --- 2. an expired server certificate, renewed without a restart ----------------------------------
mkdir -p "$T/tls-srv"; cp "$T/tls/ca.crt" "$T/tls/ca.key" "$T/tls-srv/"; chmod 700 "$T/tls-srv"
past_cert "$T/tls" "walferry server" serverAuth "$T/tls-srv/server" "DNS:localhost,IP:127.0.0.1,IP:::1"
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --tls-dir "$T/tls-srv" --store raw
grep -q "WARNING: server certificate .*expired at 2020-01-02 00:00:00 UTC" "$T/serve.log" \
  || fail "receiver did not warn about its expired certificate at start"
if "$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-other" >"$T/srvexp.out" 2>&1; then
  fail "sender accepted an expired server certificate"
fi
note "sender: $(cat "$T/srvexp.out")"
one_line "$T/srvexp.out"
grep -q "server certificate of 127.0.0.1:$PORT refused: certificate \"walferry server\" expired at 2020-01-02 00:00:00 UTC" \
  "$T/srvexp.out" || fail "sender error does not name the expired server certificate"
"$WF" tls init "$T/tls-srv" --renew server >"$T/renew.out" || fail "tls init --renew server"
kill -HUP "$RECV_PID"
for _ in $(seq 1 100); do grep -q "SIGHUP: reloaded" "$T/serve.log" && break; sleep 0.05; done
grep -q "SIGHUP: reloaded" "$T/serve.log" || fail "receiver did not reload on SIGHUP"
"$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-other" >>"$T/send.log" 2>&1 \
  || fail "renewed server certificate refused: $(tail -1 "$T/send.log")"
kill -0 "$RECV_PID" || fail "receiver died"
stop_receiver

# --- 3. renew a client certificate ----------------------------------------------------------------
"$WF" tls init "$T/tls" --renew main >/dev/null || fail "tls init --renew main"
cmp -s "$T/tls/client-main.crt" "$T/tls-main/client-main.crt" && fail "--renew main left the certificate as it was"
mkdir -p "$T/tls-main2"; cp "$T/tls/ca.crt" "$T/tls/client-main.crt" "$T/tls/client-main.key" "$T/tls-main2/"
chmod 700 "$T/tls-main2"
if "$WF" tls init "$T/tls" --renew nosuch >"$T/renew-bad.out" 2>&1; then fail "--renew of a missing cluster succeeded"; fi
one_line "$T/renew-bad.out"

# --- 4. revoke while a transfer of that cluster is open ---------------------------------------------
PORT=$(free_port)
start_receiver "$ROOT" "$PORT" --tls-dir "$T/tls" --store raw
"$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-main2" >>"$T/send.log" 2>&1 \
  || fail "renewed client certificate refused"
{ head -c 400000 "$SRC/long.bin"; sleep 3; tail -c +400001 "$SRC/long.bin"; } \
  | "$WF" send - --name long.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-other" --chunk-kib 64 \
    >"$T/long.out" 2>&1 &
LONG_PID=$!
WF_PIDS+=("$LONG_PID")
sleep 1
"$WF" tls init "$T/tls" --revoke other >"$T/revoke.out" || fail "tls init --revoke other"
grep -q "revoked client-other.crt" "$T/revoke.out" || fail "revoke did not report: $(cat "$T/revoke.out")"
[ -f "$T/tls/crl.pem" ] || fail "no crl.pem"
[ -e "$T/tls/client-other.crt" ] && fail "revoked certificate still under client-other.crt"
kill -HUP "$RECV_PID"
for _ in $(seq 1 100); do grep -q "SIGHUP: reloaded .*1 revoked" "$T/serve.log" && break; sleep 0.05; done
grep -q "SIGHUP: reloaded .*1 revoked" "$T/serve.log" || fail "receiver did not load the CRL on SIGHUP"
wait "$LONG_PID" || fail "the open transfer was dropped by the reload: $(cat "$T/long.out")"
assert_stored "$ROOT" other long.bin "$SRC/long.bin"
if "$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-other" >"$T/rev.out" 2>&1; then
  fail "revoked certificate accepted after SIGHUP"
fi
note "sender: $(cat "$T/rev.out")"
one_line "$T/rev.out"
grep -q 'refused our client certificate "other": it is revoked' "$T/rev.out" || fail "sender error does not say revoked"
grep -q 'certificate "other" is revoked' "$T/serve.log" || fail "receiver log does not say revoked"
"$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-main2" >>"$T/send.log" 2>&1 \
  || fail "cluster main refused after revoking other"

# --- 5. the cluster gets a new certificate (tls init --cluster adds it again) -----------------------
"$WF" tls init "$T/tls" --cluster other >/dev/null || fail "tls init --cluster other after revoke"
mkdir -p "$T/tls-other2"; cp "$T/tls/ca.crt" "$T/tls/client-other.crt" "$T/tls/client-other.key" "$T/tls-other2/"
chmod 700 "$T/tls-other2"
"$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-other2" >>"$T/send.log" 2>&1 \
  || fail "new certificate of cluster other refused"
# A restarted receiver still refuses the revoked one (crl.pem is read at start).
stop_receiver
start_receiver "$ROOT" "$PORT" --tls-dir "$T/tls" --store raw
if "$WF" send "$SRC/a.bin" --name a.bin --to "127.0.0.1:$PORT" --tls-dir "$T/tls-other" >/dev/null 2>&1; then
  fail "revoked certificate accepted after a restart"
fi
stop_receiver
verify_root "$ROOT"
echo "PASS tls_lifecycle"
