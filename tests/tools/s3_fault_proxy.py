#!/usr/bin/env python3
"""An HTTP fault proxy in front of an S3 endpoint, for walferry's tests (stdlib only).

Forwards each request unchanged (Host header included, so SigV4 signatures
stay valid) to --target, except:
  --fail-every K   answers every K-th request itself with 503 SlowDown (0 = never)
  --fail-all       answers every request with 503 SlowDown
  --delay S        waits S seconds before forwarding each request
The mode can be changed while running by writing one of "pass", "fail-all",
"fail-every K", "delay S" to --control FILE (re-read on each request).
With --port 0 it picks a free port and writes it to --port-file. Counts go to
stderr: one line per injected fault.
"""
import argparse
import http.client
import http.server
import os
import sys
import threading
import time

SLOWDOWN = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
            b'<Message>injected by s3_fault_proxy</Message></Error>')


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True, help="HOST:PORT (loopback)")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--control")
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--fail-all", action="store_true")
    p.add_argument("--delay", type=float, default=0.0)
    a = p.parse_args()
    host, port = a.target.rsplit(":", 1)
    lock = threading.Lock()
    state = {"n": 0}

    def mode():
        if a.control and os.path.exists(a.control):
            words = open(a.control).read().split()
            if words:
                if words[0] == "fail-all":
                    return ("fail-all", 0)
                if words[0] == "fail-every":
                    return ("fail-every", int(words[1]))
                if words[0] == "delay":
                    return ("delay", float(words[1]))
                return ("pass", 0)
        if a.fail_all:
            return ("fail-all", 0)
        if a.fail_every:
            return ("fail-every", a.fail_every)
        if a.delay:
            return ("delay", a.delay)
        return ("pass", 0)

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def handle_one(self):
            n_body = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n_body) if n_body else b""
            with lock:
                state["n"] += 1
                n = state["n"]
            m, arg = mode()
            if m == "fail-all" or (m == "fail-every" and arg > 0 and n % arg == 0):
                sys.stderr.write("s3_fault_proxy: 503 for request %d %s %s\n" % (n, self.command, self.path))
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOWDOWN)))
                self.end_headers()
                self.wfile.write(SLOWDOWN)
                return
            if m == "delay":
                time.sleep(arg)
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            headers = {k: v for k, v in self.headers.items()}
            conn.request(self.command, self.path, body=body if body or self.command in ("PUT", "POST") else None,
                         headers=headers)
            r = conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() in ("transfer-encoding", "connection"):
                    continue
                if k.lower() == "content-length" and self.command != "HEAD":
                    continue
                self.send_header(k, v)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), H)
    srv.daemon_threads = True
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
