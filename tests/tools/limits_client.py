#!/usr/bin/env python3
"""Clients that press on the receiver's resource limits (python3 stdlib only).

  limits_client.py --port P [--tls-dir D --cluster C] MODE [options]

Modes:
  idle N              N TCP connections that send nothing (no TLS handshake,
                      no HELLO)
  slowloris N         N connections that send HELLO (after the TLS handshake
                      when --tls-dir), then a CHUNK header announcing a 16 MiB
                      body, then one byte every --interval seconds
  fat-slowloris N     as slowloris, but the first 16 MiB - 1 bytes of the body
                      are sent at once, by all N in parallel (the receiver holds
                      a nearly full frame, or refuses it for want of memory)
  established N       N connections that finish the TLS handshake and HELLO,
                      then stay silent
  hold-open N         N connections, each HELLO + OPEN of its own name
                      (hold-N.bin, 1 MiB announced), then silence; prints
                      "opened K refused R" once every OPEN was answered
  slow-fetch N        N connections, each HELLO + FETCH of --name at once, then
                      nothing is read for --hold seconds (the receiver's sends
                      block while it holds its read buffers); then each is read
                      to its end; prints "fetches N complete K busy B other O"
                      (busy: ERROR "receiver busy"), and the first other error
Options: --hold S (seconds to watch; default 30), --interval I (slowloris),
--name NAME (slow-fetch).
Except in hold-open, prints one line when every connection was closed by the
receiver or --hold passed:
  "connections N closed K first_close_s X last_close_s Y"
and exits 0. With --pid-file F it writes its pid to F; with --ready-file F it
writes "ready" to F once every connection is open (for RSS measurements).
"""
import argparse
import os
import select
import socket
import ssl
import struct
import sys
import threading
import time

HELLO, OPEN, OPENED, CHUNK, ACK, COMMIT, COMMITTED, ERROR, FETCH = range(1, 10)


def frame(ftype, body):
    return b"WF" + bytes([ftype, 0]) + struct.pack("<I", len(body)) + body


def hello(cluster):
    c = cluster.encode()
    return frame(HELLO, struct.pack("<HIB", 1, 0, len(c)) + c)


def open_frame(name, size=1 << 20):
    n = name.encode()
    body = os.urandom(16) + struct.pack("<QIBBH", size, 1 << 20, 0, 1, len(n)) + n
    return frame(OPEN, body)


def fetch_frame(name):
    n = name.encode()
    return frame(FETCH, struct.pack("<QH", 0, len(n)) + n)


def recv_exact(sock, n, buf):
    """Reads n bytes into buf (a bytearray of at least n); False at EOF."""
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:n])
        if k == 0:
            return False
        got += k
    return True


def read_fetch(sock, buf):
    """Reads one FETCH answer to its end: "complete", "busy" or an error text."""
    head = bytearray(8)
    while True:
        if not recv_exact(sock, 8, head):
            return "connection closed"
        (n,) = struct.unpack("<I", head[4:8])
        if n > len(buf):
            return f"frame of {n} bytes"
        if not recv_exact(sock, n, buf):
            return "connection closed"
        t = head[2]
        if t == COMMIT:
            return "complete"
        if t == ERROR:
            (m,) = struct.unpack("<H", buf[2:4])
            msg = bytes(buf[4:4 + m]).decode(errors="replace")
            return "busy" if "receiver busy" in msg else msg


def slow_fetch(args):
    socks = []
    for _ in range(args.n):
        s = connect(args)
        s.sendall(hello(args.cluster) + fetch_frame(args.name))
        socks.append(s)
    ready(args)
    time.sleep(args.hold)
    counts = {"complete": 0, "busy": 0}
    other = []
    buf = bytearray(17 << 20)
    for s in socks:
        s.settimeout(120)
        try:
            t, _ = read_frame(s)  # the receiver's HELLO
            r = read_fetch(s, buf) if t == HELLO else f"no HELLO (got {t})"
        except (OSError, ssl.SSLError) as e:
            r = f"error {e}"
        if r in counts:
            counts[r] += 1
        else:
            other.append(r)
        s.close()
    print(f"fetches {args.n} complete {counts['complete']} busy {counts['busy']} other {len(other)}", flush=True)
    for m in other[:1]:
        print(f"error: {m}", flush=True)
    return 0


def chunk_header(body_len=16 << 20):
    return b"WF" + bytes([CHUNK, 0]) + struct.pack("<I", body_len)


def connect(args, handshake=True):
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=30)
    if not args.tls_dir or not handshake:
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(os.path.join(args.tls_dir, "ca.crt"))
    ctx.load_cert_chain(os.path.join(args.tls_dir, f"client-{args.cluster}.crt"),
                        os.path.join(args.tls_dir, f"client-{args.cluster}.key"))
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_frame(sock):
    head = b""
    while len(head) < 8:
        got = sock.recv(8 - len(head))
        if not got:
            return None, b""
        head += got
    (n,) = struct.unpack("<I", head[4:8])
    body = b""
    while len(body) < n:
        got = sock.recv(n - len(body))
        if not got:
            return None, b""
        body += got
    return head[2], body


def closed_by_peer(sock):
    try:
        sock.setblocking(False)
        data = sock.recv(65536)
        return data == b""
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except (ConnectionError, OSError, ssl.SSLError):
        return True
    finally:
        sock.setblocking(True)


def watch(args, socks, t0, dribble=None, already_closed=()):
    """Waits until every socket is closed by the receiver or --hold passes."""
    open_set = {id(s): s for s in socks}
    closes = list(already_closed)
    next_drip = time.monotonic() + (args.interval if dribble else 1e9)
    while open_set and time.monotonic() - t0 < args.hold:
        timeout = max(0.01, min(0.2, next_drip - time.monotonic()))
        r, _, _ = select.select(list(open_set.values()), [], [], timeout)
        for s in r:
            if closed_by_peer(s):
                closes.append(time.monotonic() - t0)
                del open_set[id(s)]
                s.close()
        if dribble and time.monotonic() >= next_drip:
            for k, s in list(open_set.items()):
                try:
                    s.send(b"\0")
                except (OSError, ssl.SSLError):
                    closes.append(time.monotonic() - t0)
                    del open_set[k]
            next_drip = time.monotonic() + args.interval
    first = f"{min(closes):.1f}" if closes else "-"
    last = f"{max(closes):.1f}" if closes else "-"
    print(f"connections {len(socks) + len(already_closed)} closed {len(closes)} first_close_s {first} last_close_s {last}",
          flush=True)


def ready(args):
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("ready\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-dir")
    p.add_argument("--cluster", default="main")
    p.add_argument("--hold", type=float, default=30)
    p.add_argument("--interval", type=float, default=1)
    p.add_argument("--pid-file")
    p.add_argument("--ready-file")
    p.add_argument("--name", default="fetch.bin")
    p.add_argument("mode", choices=["idle", "slowloris", "fat-slowloris", "established", "hold-open", "slow-fetch"])
    p.add_argument("n", type=int)
    args = p.parse_args()
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")

    t0 = time.monotonic()
    socks = []
    if args.mode == "slow-fetch":
        return slow_fetch(args)
    if args.mode == "idle":
        for _ in range(args.n):
            socks.append(connect(args, handshake=False))
        ready(args)
        watch(args, socks, t0)
        return 0
    if args.mode in ("slowloris", "fat-slowloris", "established"):
        for _ in range(args.n):
            s = connect(args)
            s.sendall(hello(args.cluster))
            socks.append(s)
        for s in socks:
            t, _ = read_frame(s)  # the receiver's HELLO
            if t != HELLO:
                print(f"no HELLO from the receiver (got {t})", flush=True)
                return 1
            if args.mode == "slowloris":
                s.sendall(chunk_header())
        early = []
        if args.mode == "fat-slowloris":
            # Every connection at once (a receiver that makes some of them wait
            # for memory must not serialize the others): one thread each.
            failed = []

            def fat(sock):
                try:
                    sock.sendall(chunk_header() + bytes((16 << 20) - 1))
                except (OSError, ssl.SSLError):
                    failed.append(sock)  # the receiver refused it and closed

            threads = [threading.Thread(target=fat, args=(s,), daemon=True) for s in socks]
            for th in threads:
                th.start()
            for th in threads:
                th.join(max(0.1, args.hold - (time.monotonic() - t0)))
            early = [0.0 for _ in failed]
            for sock in failed:
                socks.remove(sock)
                sock.close()
        ready(args)
        t0 = time.monotonic()
        watch(args, socks, t0, dribble=args.mode != "established", already_closed=early)
        return 0
    # hold-open
    opened = refused = 0
    messages = []
    for i in range(args.n):
        s = connect(args)
        s.sendall(hello(args.cluster))
        t, _ = read_frame(s)
        if t != HELLO:
            refused += 1
            continue
        s.sendall(open_frame(f"hold-{i}.bin"))
        t, body = read_frame(s)
        if t == OPENED:
            opened += 1
            socks.append(s)
        else:
            refused += 1
            if t == ERROR and len(body) >= 4:
                (n,) = struct.unpack("<H", body[2:4])
                messages.append(body[4:4 + n].decode(errors="replace"))
    print(f"opened {opened} refused {refused}", flush=True)
    for m in messages[:1]:
        print(f"error: {m}", flush=True)
    ready(args)
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        time.sleep(0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
