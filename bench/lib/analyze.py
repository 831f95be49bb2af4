#!/usr/bin/env python3
"""Turns one traced run of movim-setup (trace.py's JSON) and, where there is one, the probe's log
(probe.py) into figures, one JSON record a line on stdout:
{"metric": "upgrade.downtime", "value": 12.3, "unit": "s", "size": "100M", "run": 2}.

  analyze.py upgrade TRACE PROBE --dir DEPLOYMENT --size S --run R
  analyze.py rollback TRACE --dir DEPLOYMENT --size S --run R     (a rollback by hand: its restore)
  analyze.py auto-rollback TRACE PROBE --size S --run R           (an upgrade that fails and undoes itself)
  analyze.py hyperfine EXPORT --metric NAME

The tool's step timing comes from the times its `==> step: …` lines reached stderr: a step lasts
until the next step line, the final `==> Movim … is up` line, or a `warning:`/`error:` line."""
import argparse
import glob
import json
import os
import re
import sys

STEP = re.compile(r"^==> (prepull|stop|backup|write|migrate|restore|start|prove): ")
BOUNDARY = re.compile(r"^(==> Movim |==> rolling back|warning: |error: )")


def emit(metric, value, unit, size=None, run=None):
    if value is None:
        return
    print(json.dumps({"metric": metric, "value": round(float(value), 4), "unit": unit,
                      "size": size, "run": run}))


def load(path):
    with open(path) as f:
        return json.load(f)


def lines_of(trace):
    return [(t, text) for t, stream, text in trace["lines"] if stream == "err"]


def steps(trace):
    """step name -> (start, end) from the tool's own lines."""
    out, current = {}, None
    for t, text in lines_of(trace):
        m = STEP.match(text)
        if m or BOUNDARY.match(text):
            if current:
                out[current[0]] = (current[1], t)
                current = None
            if m:
                current = (m.group(1), t)
    if current:
        out[current[0]] = (current[1], trace["end"])
    return out


def first_line(trace, pattern, after=0.0):
    rx = re.compile(pattern)
    return next((t for t, text in lines_of(trace) if t >= after and rx.search(text)), None)


def probe(path):
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split(None, 2)
            if len(parts) >= 2:
                out.append((float(parts[0]), parts[1] == "ok"))
    return out


def outage(samples, after):
    """(first failed handshake at or after `after`, first success after it)."""
    down = next((t for t, ok in samples if t >= after and not ok), None)
    if down is None:
        return None, None
    up = next((t for t, ok in samples if t > down and ok), None)
    return down, up


def peak_rss(trace, window):
    if not window:
        return None
    start, end = window
    inside = [kb for t, kb in trace["rss_samples"] if start <= t <= end]
    return max(inside) if inside else None


def newest_dump(directory):
    dumps = sorted(glob.glob(os.path.join(directory, "backups", "db-*.dump")), key=os.path.getmtime)
    return os.path.getsize(dumps[-1]) if dumps else None


def upgrade(a):
    trace, samples = load(a.trace), probe(a.probe)
    s = steps(trace)
    if trace["rc"] != 0 or "stop" not in s:
        sys.exit(f"the upgrade did not run through (exit {trace['rc']})")
    stop = s["stop"][0]
    down, up = outage(samples, stop - 0.2)
    if down is not None and up is None:
        sys.exit("the probe never saw the stack answer again")
    emit("upgrade.downtime", (up - down) if down else 0.0, "s", a.size, a.run)
    ws = first_line(trace, r"^\s+websocket: HTTP 101", after=stop)
    if ws:
        emit("upgrade.downtime_tool", ws - stop, "s", a.size, a.run)
    for name in ("stop", "backup", "migrate", "start", "prove"):
        if name in s:
            emit(f"upgrade.step.{name}", s[name][1] - s[name][0], "s", a.size, a.run)
    emit("upgrade.wall", trace["wall"], "s", a.size, a.run)
    if "backup" in s:
        emit("backup.tool", s["backup"][1] - s["backup"][0], "s", a.size, a.run)
        emit("mem.backup_rss", peak_rss(trace, s["backup"]), "KiB", a.size, a.run)
    emit("mem.tool_hwm", trace["tool_hwm_kb"], "KiB", a.size, a.run)
    emit("mem.maxrss_tree", trace["maxrss_kb"], "KiB", a.size, a.run)
    emit("dump.tool_bytes", newest_dump(a.dir), "B", a.size, a.run)


def rollback(a):
    trace = load(a.trace)
    s = steps(trace)
    if trace["rc"] != 0:
        sys.exit(f"the rollback failed (exit {trace['rc']})")
    if "restore" not in s:
        sys.exit("the rollback did not restore the database")
    emit("restore.tool", s["restore"][1] - s["restore"][0], "s", a.size, a.run)
    emit("mem.restore_rss", peak_rss(trace, s["restore"]), "KiB", a.size, a.run)
    emit("rollback.manual_wall", trace["wall"], "s", a.size, a.run)


def auto_rollback(a):
    trace, samples = load(a.trace), probe(a.probe)
    failed = first_line(trace, r"^warning: .* failed at step")
    if trace["rc"] == 0 or failed is None:
        sys.exit("the upgrade to the bad release did not fail and roll back")
    if not any("runs again and is healthy" in text for _, text in lines_of(trace)):
        sys.exit("the automatic rollback did not end healthy")
    up = next((t for t, ok in samples if t >= failed and ok), None)
    if up is None:
        sys.exit("the probe never saw the stack answer after the rollback")
    emit("rollback.to_healthy", up - failed, "s", a.size, a.run)
    ws = first_line(trace, r"^\s+websocket: HTTP 101", after=failed)
    if ws:
        emit("rollback.to_healthy_tool", ws - failed, "s", a.size, a.run)
    restoring = first_line(trace, r"^==> restoring the database", after=failed)
    if restoring:
        after = next((t for t, text in lines_of(trace) if t > restoring and text.startswith("==> ")),
                     trace["end"])
        emit("rollback.restore", after - restoring, "s", a.size, a.run)
    else:
        emit("rollback.restore", 0.0, "s", a.size, a.run)
    start = steps(trace).get("start")
    if start:
        emit("rollback.detect", failed - start[0], "s", a.size, a.run)
    down, back = outage(samples, 0.0)
    if down and back:
        emit("rollback.outage", back - down, "s", a.size, a.run)


def hyperfine(a):
    data = load(a.trace)["results"][0]
    times = data.get("times") or [data["mean"]]
    for i, t in enumerate(times, 1):
        emit(a.metric, t, "s", None, i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["upgrade", "rollback", "auto-rollback", "hyperfine"])
    ap.add_argument("trace")
    ap.add_argument("probe", nargs="?")
    ap.add_argument("--dir")
    ap.add_argument("--size")
    ap.add_argument("--run", type=int)
    ap.add_argument("--metric")
    a = ap.parse_args()
    {"upgrade": upgrade, "rollback": rollback, "auto-rollback": auto_rollback,
     "hyperfine": hyperfine}[a.kind](a)


if __name__ == "__main__":
    main()
