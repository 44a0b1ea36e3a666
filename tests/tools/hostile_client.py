#!/usr/bin/env python3
"""A hostile walferry client for tests (python3 stdlib only).

Speaks just enough of the wire protocol (transport/wire.h: 8-byte header
'W' 'F' type flags body_len(u32 LE)) to send what a well-behaved sender never
would, then reports what the receiver answered. Exit 0 when the receiver
behaved (refused, closed, never accepted), 1 when it accepted or hung.

  hostile_client.py --port P [--tls-dir D --cluster C] CASE [ARG]

Cases:
  garbage N            N random bytes instead of frames
  oversized            a CHUNK header announcing a 4 GiB body
  unknown-type         a frame of type 99
  chunk-first          a CHUNK before any OPEN
  commit-first         a COMMIT before any OPEN
  name HEX             HELLO then OPEN with the name given as hex bytes
  cluster HEX          HELLO claiming the cluster given as hex bytes (insecure receivers)
  no-cert              TLS handshake without a client certificate
  tls12                TLS 1.2 only, with a valid client certificate
Prints one line: "received: TYPES..." / "closed" / "handshake refused: ...".
"""
import argparse
import os
import socket
import ssl
import struct
import sys

HELLO, OPEN, OPENED, CHUNK, ACK, COMMIT, COMMITTED, ERROR = range(1, 9)


def frame(ftype, body):
    return b"WF" + bytes([ftype, 0]) + struct.pack("<I", len(body)) + body


def hello(cluster=b"main"):
    return frame(HELLO, struct.pack("<HIB", 1, 0, len(cluster)) + cluster)


def open_frame(name, size=1000):
    body = os.urandom(16) + struct.pack("<QIBBH", size, 1 << 20, 0, 1, len(name)) + name
    return frame(OPEN, body)


def connect(args, tls_version=None, with_cert=True):
    raw = socket.create_connection(("127.0.0.1", args.port), timeout=10)
    if not args.tls_dir:
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(os.path.join(args.tls_dir, "ca.crt"))
    if tls_version:
        ctx.maximum_version = tls_version
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if with_cert:
        ctx.load_cert_chain(os.path.join(args.tls_dir, f"client-{args.cluster}.crt"),
                            os.path.join(args.tls_dir, f"client-{args.cluster}.key"))
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_frames(sock, stop_on_error=True):
    """Reads frames until EOF, ERROR or timeout; returns (types, how)."""
    types = []
    buf = b""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return types, "closed"
            buf += data
            while len(buf) >= 8:
                if buf[:2] != b"WF":
                    return types + ["junk"], "junk"
                (blen,) = struct.unpack("<I", buf[4:8])
                if len(buf) < 8 + blen:
                    break
                types.append(buf[2])
                t = buf[2]
                buf = buf[8 + blen:]
                if t == ERROR and stop_on_error:
                    return types, "error"
    except socket.timeout:
        return types, "timeout"
    except (ssl.SSLError, OSError) as e:
        return types, f"reset ({e.__class__.__name__}: {e})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls-dir")
    p.add_argument("--cluster", default="main")
    p.add_argument("case")
    p.add_argument("arg", nargs="?")
    args = p.parse_args()

    try:
        if args.case == "no-cert":
            s = connect(args, with_cert=False)
            s.sendall(hello())
            types, how = read_frames(s)
        elif args.case == "tls12":
            s = connect(args, tls_version=ssl.TLSVersion.TLSv1_2)
            s.sendall(hello())
            types, how = read_frames(s)
        else:
            s = connect(args)
            if args.case == "garbage":
                s.sendall(os.urandom(int(args.arg or 65536)))
                # Then end our side: fewer bytes than a header must not leave
                # the receiver waiting for ever, and must not be accepted.
                if not args.tls_dir:
                    s.shutdown(socket.SHUT_WR)
            elif args.case == "oversized":
                s.sendall(hello() + b"WF" + bytes([CHUNK, 0]) + struct.pack("<I", 0xFFFFFFF0)
                          + b"\0" * 64)
            elif args.case == "unknown-type":
                s.sendall(hello() + frame(99, b"\0" * 16))
            elif args.case == "chunk-first":
                body = struct.pack("<QQIIQB7x", 0, 0, 4, 4, 0, 0) + b"abcd"
                s.sendall(hello() + frame(CHUNK, body))
            elif args.case == "commit-first":
                s.sendall(hello() + frame(COMMIT, struct.pack("<Q", 0) + b"\0" * 16))
            elif args.case == "name":
                s.sendall(hello() + open_frame(bytes.fromhex(args.arg)))
            elif args.case == "cluster":
                c = bytes.fromhex(args.arg)
                s.sendall(hello(c) + open_frame(b"probe.bin"))
            else:
                sys.exit(f"unknown case {args.case}")
            types, how = read_frames(s)
    except (ssl.SSLError, OSError) as e:
        print(f"handshake refused: {e.__class__.__name__}: {e}")
        return 0
    names = {1: "HELLO", 3: "OPENED", 5: "ACK", 7: "COMMITTED", 8: "ERROR"}
    print("received: " + " ".join(names.get(t, str(t)) for t in types) + f" then {how}")
    if OPENED in types or COMMITTED in types or ACK in types:
        print("ACCEPTED something it should have refused")
        return 1
    if args.case in ("no-cert", "tls12") and HELLO in types:
        print("answered a client it should have refused")
        return 1
    if how == "timeout":
        print("receiver neither answered nor closed within 10 s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
