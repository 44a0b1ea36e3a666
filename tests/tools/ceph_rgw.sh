#!/usr/bin/env bash
# A real single-node Ceph (mon, osd on memstore, radosgw) on 127.0.0.1, in a
# folder of its own, on free ports, for e2e tests and benches. Facts behind the
# configuration: /work/shared/notes/ceph-rgw-on-one-machine.md, docs/s3.md.
#
#   tests/tools/ceph_rgw.sh start DIR [RGW_COUNT]  brings it up (about 3 s), writes DIR/env:
#        S3_ENDPOINT=http://127.0.0.1:PORT  (and S3_ENDPOINT2.. when RGW_COUNT > 1)
#        AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION
#   tests/tools/ceph_rgw.sh stop DIR               kills the daemons it started, by pid
#   tests/tools/ceph_rgw.sh stop-rgw DIR [N]       kills radosgw N (default 1) only
#   tests/tools/ceph_rgw.sh start-rgw DIR [N]      (re)starts radosgw N on its port
#   tests/tools/ceph_rgw.sh available              exit 0 when the packages are installed
# With CEPH_RGW_TLS=1, radosgw 1 also serves HTTPS (self-signed) and DIR/env has
# S3_TLS_ENDPOINT=https://127.0.0.1:PORT (for peers that only speak TLS, e.g. pgBackRest).
# Every wait fails loudly on timeout (exit 1, with the daemon's log tail).
set -euo pipefail

die() { echo "ceph_rgw: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

available() {
  command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v radosgw >/dev/null &&
    command -v radosgw-admin >/dev/null && command -v monmaptool >/dev/null && command -v ceph >/dev/null
}

# wait_for SECONDS DESCRIPTION LOG CMD...: retries CMD every 0.1 s.
wait_for() {
  local secs=$1 what=$2 log=$3; shift 3
  local end=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then
      [ -f "$log" ] && tail -n 20 "$log" >&2
      die "timed out after ${secs}s waiting for $what"
    fi
    sleep 0.1
  done
}

rgw_answers() {  # any HTTP status means the gateway is up
  local code
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$1/") || return 1
  [ "$code" != "000" ]
}

start_rgw() {
  local dir=$1 n=${2:-1}
  local port
  port=$(cat "$dir/rgw$n.port")
  radosgw -c "$dir/ceph.conf" -n "client.rgw.$n" -f >"$dir/rgw$n.out" 2>&1 &
  echo $! >"$dir/rgw$n.pid"
  wait_for 60 "radosgw $n on port $port" "$dir/log/client.rgw.$n.log" rgw_answers "http://127.0.0.1:$port"
}

stop_pidfile() {
  local f=$1
  [ -f "$f" ] || return 0
  local pid
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

start() {
  local dir=$1 count=${2:-1}
  available || die "Ceph packages missing (apt-get install ceph-mon ceph-osd radosgw ceph-common)"
  mkdir -p "$dir"/{mon,osd,run,log}
  dir=$(cd "$dir" && pwd)
  local fsid mon2 mon1
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  mon2=$(free_port)
  mon1=$(free_port)
  local ports=()
  for n in $(seq 1 "$count"); do
    ports+=("$(free_port)")
    echo "${ports[-1]}" >"$dir/rgw$n.port"
  done
  local tls_port="" tls_opts=""
  if [ "${CEPH_RGW_TLS:-0}" = 1 ]; then
    tls_port=$(free_port)
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
      -keyout "$dir/rgw.key" -out "$dir/rgw.crt" >/dev/null 2>&1 || die "openssl req failed"
    tls_opts=" ssl_endpoint=127.0.0.1:$tls_port ssl_certificate=$dir/rgw.crt ssl_private_key=$dir/rgw.key"
  fi
  {
    cat <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
ms mon client mode = crc
ms client mode = crc
ms bind ipv6 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
paxos propose interval = 0.05
paxos min wait = 0.01
osd objectstore = memstore
memstore device bytes = 3221225472
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
mon cluster log file = $dir/log/cluster.log
crash dir = $dir/run/crash
exit on missing keyring = false
EOF
    for n in $(seq 1 "$count"); do
      cat <<EOF
[client.rgw.$n]
rgw frontends = beast endpoint=127.0.0.1:${ports[$((n - 1))]}$([ "$n" = 1 ] && echo "$tls_opts")
rgw dns name = localhost
rgw data = $dir/run/rgw$n
EOF
    done
  } >"$dir/ceph.conf"
  local conf=$dir/ceph.conf
  monmaptool --create --addv a "[v2:127.0.0.1:$mon2,v1:127.0.0.1:$mon1]" --fsid "$fsid" "$dir/monmap" \
    >"$dir/log/monmaptool.out" 2>&1 || die "monmaptool failed"
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >"$dir/log/mon-mkfs.out" 2>&1 ||
    { tail -n 20 "$dir/log/mon-mkfs.out" >&2; die "ceph-mon --mkfs failed"; }
  ceph-mon -c "$conf" -i a -f >"$dir/mon.out" 2>&1 &
  echo $! >"$dir/mon.pid"
  wait_for 30 "ceph-mon" "$dir/log/mon.a.log" timeout 5 ceph -c "$conf" mon stat
  local uuid id
  uuid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  id=$(timeout 20 ceph -c "$conf" osd new "$uuid") || die "ceph osd new failed"
  mkdir -p "$dir/osd/ceph-$id"
  ceph-osd -c "$conf" -i "$id" --mkfs --osd-uuid "$uuid" >"$dir/log/osd-mkfs.out" 2>&1 ||
    { tail -n 20 "$dir/log/osd-mkfs.out" >&2; die "ceph-osd --mkfs failed"; }
  ceph-osd -c "$conf" -i "$id" -f >"$dir/osd.out" 2>&1 &
  echo $! >"$dir/osd.pid"
  osd_up() { timeout 5 ceph -c "$conf" osd stat 2>/dev/null | grep -q '1 up'; }
  wait_for 60 "ceph-osd to be up" "$dir/log/osd.$id.log" osd_up
  for n in $(seq 1 "$count"); do start_rgw "$dir" "$n"; done
  local key=walferrytestkey secret=walferrytestsecret0123456789
  timeout 30 radosgw-admin -c "$conf" -n client.rgw.1 user create --uid=test --display-name=test \
    --access-key="$key" --secret-key="$secret" >"$dir/log/user.out" 2>&1 ||
    { tail -n 20 "$dir/log/user.out" >&2; die "radosgw-admin user create failed"; }
  {
    echo "S3_ENDPOINT=http://127.0.0.1:${ports[0]}"
    for n in $(seq 2 "$count"); do echo "S3_ENDPOINT$n=http://127.0.0.1:${ports[$((n - 1))]}"; done
    [ -n "$tls_port" ] && echo "S3_TLS_ENDPOINT=https://127.0.0.1:$tls_port"
    echo "AWS_ACCESS_KEY_ID=$key"
    echo "AWS_SECRET_ACCESS_KEY=$secret"
    echo "AWS_REGION=us-east-1"
    echo "CEPH_CONF=$conf"
  } >"$dir/env"
}

stop() {
  local dir=$1
  for f in "$dir"/rgw*.pid; do [ -e "$f" ] && stop_pidfile "$f"; done
  stop_pidfile "$dir/osd.pid"
  stop_pidfile "$dir/mon.pid"
}

cmd=${1:-}
case "$cmd" in
  available) available ;;
  start) start "${2:?DIR}" "${3:-1}" ;;
  stop) stop "${2:?DIR}" ;;
  stop-rgw) stop_pidfile "${2:?DIR}/rgw${3:-1}.pid" ;;
  start-rgw) start_rgw "${2:?DIR}" "${3:-1}" ;;
  *) die "usage: ceph_rgw.sh start DIR [N] | stop DIR | stop-rgw DIR [N] | start-rgw DIR [N] | available" ;;
esac
