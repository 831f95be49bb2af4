#!/usr/bin/env python3
"""Runs one command and records, as JSON on --out: its wall time, exit code, every stderr/stdout line
with the time it arrived (the tool prints `==> step` lines; their times give its step timing), the
peak RSS of the process tree as /usr/bin/time -v reports it (wait4's ru_maxrss) and, sampled every
--sample seconds from /proc, the tool process's own RSS (VmRSS over time, VmHWM at the end).

usage: trace.py --out FILE [--sample 0.05] -- COMMAND ARGS...
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--sample", type=float, default=0.05)
    ap.add_argument("--echo", action="store_true", help="copy the command's output to stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    lines = []
    lock = threading.Lock()
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def reader(stream, name):
        for raw in iter(stream.readline, b""):
            t = time.time()
            text = raw.decode("utf-8", "replace").rstrip("\n")
            with lock:
                lines.append([round(t, 3), name, text])
            if a.echo:
                print(text, file=sys.stderr, flush=True)

    readers = [
        threading.Thread(target=reader, args=(proc.stdout, "out"), daemon=True),
        threading.Thread(target=reader, args=(proc.stderr, "err"), daemon=True),
    ]
    for r in readers:
        r.start()

    samples = []
    hwm = [None]
    done = threading.Event()

    def sampler():
        while not done.is_set():
            rss = status_kb(proc.pid, "VmRSS")
            h = status_kb(proc.pid, "VmHWM")
            if rss is not None:
                samples.append([round(time.time(), 3), rss])
            if h is not None:
                hwm[0] = h
            done.wait(a.sample)

    s = threading.Thread(target=sampler, daemon=True)
    s.start()
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.time()
    done.set()
    s.join()
    for r in readers:
        r.join(timeout=5)
    proc.returncode = os.waitstatus_to_exitcode(status)
    lines.sort(key=lambda x: x[0])
    result = {
        "cmd": cmd,
        "start": round(start, 3),
        "end": round(end, 3),
        "wall": round(end - start, 3),
        "rc": proc.returncode,
        "maxrss_kb": usage.ru_maxrss,
        "tool_hwm_kb": hwm[0],
        "rss_samples": samples,
        "lines": lines,
    }
    with open(a.out, "w") as f:
        json.dump(result, f)
    sys.exit(0 if proc.returncode >= 0 else 1)


if __name__ == "__main__":
    main()
