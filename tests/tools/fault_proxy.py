#!/usr/bin/env python3
"""A fault-injecting TCP proxy for walferry's tests (python3 stdlib only).

Listens on a loopback port and forwards each connection to a target, injecting
one fault per connection in one direction:

  pass                       forward unchanged
  cut       --after N        reset both sides once N bytes went through
  stall     --after N --seconds S
                             stop forwarding for S seconds after N bytes,
                             then go on (a peer timeout should fire first)
  flip      --after N        XOR the byte at offset N with --xor (default 0x01)
  truncate  --after N        forward N bytes, then close that direction
                             (FIN) and drop everything after it
  garbage   --after N        after N bytes, inject --garbage-len random bytes
  reorder   --after N        after N bytes, swap the two halves of what the
                             same read brought next (up to --reorder-len bytes
                             each): bytes out of order, none lost

--dir c2s|s2c picks the direction (client->server or server->client).
--after may be "A:B" for a random offset in [A, B] (drawn per connection with
--seed). --faulty K applies the fault to the first K connections only, the
rest pass through (default: all). Bytes forwarded per direction are counted in
total; the log (--log, default stderr) gets one line per fault and a summary
line "total c2s=… s2c=… connections=…" at exit, which also goes to --stats.

The proxy exits after --lifetime seconds (default 120), or on SIGTERM/SIGINT.
With --port 0 it picks a free port and writes it to --port-file.
"""
import argparse
import os
import random
import signal
import socket
import struct
import sys
import threading
import time

BUF = 256 * 1024


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c2s = 0
        self.s2c = 0
        self.connections = 0
        self.faults = 0


def parse_range(text):
    if ":" in text:
        a, b = text.split(":", 1)
        return int(a), int(b)
    return int(text), int(text)


def hard_close(sock):
    """Closes with RST (SO_LINGER 0): an abrupt cut, as a dead network gives."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wakes the other pump thread blocked in recv() on this socket; without
        # it close() would not reach the kernel socket until that recv returns.
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class Connection:
    def __init__(self, args, index, client, stats, log, rng):
        self.args = args
        self.index = index
        self.client = client
        self.stats = stats
        self.log = log
        self.faulty = args.faulty < 0 or index < args.faulty
        lo, hi = parse_range(args.after)
        self.after = rng.randint(lo, hi)
        self.garbage = bytes(rng.getrandbits(8) for _ in range(args.garbage_len))
        self.dead = threading.Event()
        self.server = None

    def run(self):
        host, port = self.args.target.rsplit(":", 1)
        host = host.strip("[]")
        try:
            self.server = socket.create_connection((host, int(port)), timeout=10)
            self.server.settimeout(None)
        except OSError as e:
            self.log(f"conn {self.index}: cannot reach target: {e}")
            hard_close(self.client)
            return
        for s in (self.client, self.server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t1 = threading.Thread(target=self.pump, args=(self.client, self.server, "c2s"), daemon=True)
        t2 = threading.Thread(target=self.pump, args=(self.server, self.client, "s2c"), daemon=True)
        t1.start()
        t2.start()
        t1.join()
        t2.join()
        for s in (self.client, self.server):
            try:
                s.close()
            except OSError:
                pass

    def kill(self, why):
        if not self.dead.is_set():
            self.dead.set()
            self.log(f"conn {self.index}: {why}")
            hard_close(self.client)
            hard_close(self.server)

    def count(self, direction, n):
        with self.stats.lock:
            if direction == "c2s":
                self.stats.c2s += n
            else:
                self.stats.s2c += n

    def pump(self, src, dst, direction):
        mode = self.args.mode if (self.faulty and direction == self.args.dir) else "pass"
        seen = 0
        fired = False
        try:
            while not self.dead.is_set():
                data = src.recv(BUF)
                if not data:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                if mode != "pass" and not fired and seen + len(data) > self.after:
                    k = self.after - seen
                    fired = True
                    with self.stats.lock:
                        self.stats.faults += 1
                    if mode == "cut":
                        dst.sendall(data[:k])
                        self.count(direction, k)
                        self.kill(f"cut {direction} after {self.after} bytes")
                        return
                    if mode == "truncate":
                        dst.sendall(data[:k])
                        self.count(direction, k)
                        self.log(f"conn {self.index}: truncated {direction} after {self.after} bytes")
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        while src.recv(BUF):  # drop the rest until the peer gives up
                            pass
                        return
                    if mode == "stall":
                        dst.sendall(data[:k])
                        self.log(f"conn {self.index}: stalled {direction} at {self.after} bytes "
                                 f"for {self.args.seconds} s")
                        self.dead.wait(self.args.seconds)
                        dst.sendall(data[k:])
                        self.count(direction, len(data))
                        seen += len(data)
                        continue
                    if mode == "flip":
                        b = bytearray(data)
                        b[k] ^= self.args.xor
                        data = bytes(b)
                        self.log(f"conn {self.index}: flipped {direction} byte {self.after} "
                                 f"(xor 0x{self.args.xor:02x})")
                    if mode == "reorder":
                        tail = data[k:]
                        h = min(len(tail) // 2, self.args.reorder_len)
                        if h > 0:
                            data = data[:k] + tail[h:2 * h] + tail[:h] + tail[2 * h:]
                        self.log(f"conn {self.index}: reordered {2 * h} bytes {direction} at {self.after}")
                    if mode == "garbage":
                        data = data[:k] + self.garbage + data[k:]
                        self.log(f"conn {self.index}: injected {len(self.garbage)} garbage bytes "
                                 f"{direction} at {self.after}")
                dst.sendall(data)
                self.count(direction, len(data))
                seen += len(data)
        except OSError:
            self.kill(f"{direction} ended by the peer after {seen} bytes")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--target", required=True, help="HOST:PORT (loopback only)")
    p.add_argument("--mode", default="pass",
                   choices=["pass", "cut", "stall", "flip", "truncate", "garbage", "reorder"])
    p.add_argument("--reorder-len", type=int, default=4096)
    p.add_argument("--dir", default="c2s", choices=["c2s", "s2c"])
    p.add_argument("--after", default="0", help="N or A:B (random per connection)")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--xor", type=lambda s: int(s, 0), default=0x01)
    p.add_argument("--garbage-len", type=int, default=64)
    p.add_argument("--faulty", type=int, default=-1, help="fault only the first K connections")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lifetime", type=float, default=120.0)
    p.add_argument("--log")
    p.add_argument("--stats", help="file to write the byte totals to at exit")
    args = p.parse_args()

    thost = args.target.rsplit(":", 1)[0].strip("[]")
    if args.listen not in ("127.0.0.1", "::1") or thost not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("fault_proxy: loopback addresses only")

    logf = open(args.log, "a", buffering=1) if args.log else sys.stderr
    log_lock = threading.Lock()

    def log(msg):
        with log_lock:
            logf.write(f"fault_proxy: {msg}\n")

    stats = Stats()
    rng = random.Random(args.seed)
    family = socket.AF_INET6 if ":" in args.listen else socket.AF_INET
    ls = socket.socket(family, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((args.listen, args.port))
    ls.listen(64)
    port = ls.getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.port_file)
    log(f"listening on {args.listen}:{port} -> {args.target}, mode {args.mode} {args.dir} "
        f"after {args.after}, faulty {args.faulty}")

    def finish(*_):
        line = (f"total c2s={stats.c2s} s2c={stats.s2c} connections={stats.connections} "
                f"faults={stats.faults}")
        log(line)
        if args.stats:
            with open(args.stats, "w") as f:
                f.write(line + "\n")
        logf.flush()
        os._exit(0)

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    deadline = time.monotonic() + args.lifetime
    ls.settimeout(0.2)
    index = 0
    while time.monotonic() < deadline:
        try:
            c, _ = ls.accept()
        except socket.timeout:
            continue
        c.settimeout(None)
        with stats.lock:
            stats.connections += 1
        conn = Connection(args, index, c, stats, log, rng)
        index += 1
        threading.Thread(target=conn.run, daemon=True).start()
    log("lifetime over")
    finish()


if __name__ == "__main__":
    main()
