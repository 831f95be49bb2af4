#!/usr/bin/env python3
"""Raw RFC 6455 websocket handshakes to 127.0.0.1:PORT/ws/ every INTERVAL seconds, measured from
outside the tool under test. One line per attempt on stdout: `<epoch seconds> ok|fail <detail>`.
Runs until killed (SIGTERM) or until --seconds have passed."""
import argparse
import base64
import hashlib
import os
import signal
import socket
import sys
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def handshake(port, origin, host, timeout):
    key = base64.b64encode(os.urandom(16)).decode()
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    req = (
        f"GET /ws/ HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf and len(buf) < 8192:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    head = buf.decode("latin-1")
    status = head.split("\r\n", 1)[0]
    if " 101 " not in status + " ":
        return False, status or "empty reply"
    headers = dict(
        (k.strip().lower(), v.strip())
        for k, _, v in (line.partition(":") for line in head.split("\r\n")[1:])
    )
    if headers.get("sec-websocket-accept") != want:
        return False, "101 with a wrong accept"
    return True, status


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--origin", default="https://movim.test")
    ap.add_argument("--host", default="movim.test")
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=0)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    end = time.time() + a.seconds if a.seconds else None
    while end is None or time.time() < end:
        t = time.time()
        try:
            ok, detail = handshake(a.port, a.origin, a.host, a.timeout)
        except OSError as e:
            ok, detail = False, type(e).__name__
        try:
            print(f"{t:.3f} {'ok' if ok else 'fail'} {detail}", flush=True)
        except BrokenPipeError:
            return
        time.sleep(max(0.0, a.interval - (time.time() - t)))


if __name__ == "__main__":
    main()
