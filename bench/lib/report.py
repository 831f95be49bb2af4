#!/usr/bin/env python3
"""Aggregates the bench's records (one JSON object a line: metric, value, unit, size, run) into one
table — each figure the median over the runs with min and max, next to its target — and a JSON
file that two runs can be compared with:

  report.py --machine machine.json --results results.jsonl --json OUT.json [--wall SECONDS]
  report.py --show OUT.json                 (print a saved run's table again)
  report.py --compare OLD.json NEW.json     (medians side by side, NEW/OLD)
"""
import argparse
import datetime
import json
import statistics
import sys
from collections import defaultdict

MIB = 1024 * 1024


def per_run(records):
    """(metric, size) -> {run: value}"""
    out = defaultdict(dict)
    for r in records:
        out[(r["metric"], r["size"])][r["run"]] = r["value"]
    return out


def derive(data):
    """Ratios and differences computed run by run (both sides measured in the same run)."""
    def combine(name, a, b, f):
        for (metric, size), runs in list(data.items()):
            if metric != a or (b, size) not in data:
                continue
            other = data[(b, size)]
            for run, va in runs.items():
                if run in other and f(va, other[run]) is not None:
                    data[(name, size)][run] = f(va, other[run])

    div = lambda x, y: x / y if y else None  # noqa: E731
    combine("backup.ratio", "backup.raw", "backup.tool", div)
    combine("restore.ratio", "restore.raw", "restore.tool", div)
    combine("upgrade.excess", "upgrade.downtime", "upgrade.step.migrate", lambda x, y: x - y)
    for (metric, size), runs in list(data.items()):
        if metric == "upgrade.excess" and ("upgrade.step.backup", size) in data:
            b = data[("upgrade.step.backup", size)]
            data[("upgrade.excess_backup", size)] = {
                r: v - b[r] for r, v in runs.items() if r in b}
    combine("rollback.excess", "rollback.to_healthy", "rollback.restore", lambda x, y: x - y)
    combine("backup.tool_mibps", "db.bytes", "backup.tool", lambda x, y: x / MIB / y if y else None)
    combine("backup.raw_mibps", "db.bytes", "backup.raw", lambda x, y: x / MIB / y if y else None)
    combine("restore.tool_mibps", "db.bytes", "restore.tool", lambda x, y: x / MIB / y if y else None)
    combine("restore.raw_mibps", "db.bytes", "restore.raw", lambda x, y: x / MIB / y if y else None)
    sizes = sorted({s for (m, s) in data if m == "mem.backup_rss" and s},
                   key=lambda s: statistics.median(data[("db.bytes", s)].values()) if ("db.bytes", s) in data else 0)
    if len(sizes) >= 2:
        lo, hi = data[("mem.backup_rss", sizes[0])], data[("mem.backup_rss", sizes[-1])]
        data[("mem.flatness", None)] = {r: hi[r] / lo[r] for r in hi if r in lo and lo[r]}
    return data


def summarize(data):
    figures = {}
    for (metric, size), runs in data.items():
        values = [runs[r] for r in sorted(runs, key=lambda r: (r is None, r))]
        if not values:
            continue
        key = f"{metric}@{size}" if size else metric
        figures[key] = {"metric": metric, "size": size, "n": len(values),
                        "median": statistics.median(values), "min": min(values),
                        "max": max(values), "values": values}
    return figures


# (label, metric, format, target): target = (op, bound, text) checked on the median.
ROWS = [
    ("1. init", None, None, None),
    ("init --yes to verified health (cached images)", "init.tool", "s", None),
    ("docker compose up -d --wait, same file, fresh volumes", "init.raw_compose", "s", None),
    ("  ... and to its first websocket 101", "init.raw_compose_to_101", "s", None),
    ("ratio init / raw compose", "init.ratio", "x", ("<=", 1.3, "<= 1.3x")),
    ("2. upgrade v0.29.2 -> v0.30.0", None, None, None),
    ("database size (pg_database_size)", "db.bytes", "mib", None),
    ("downtime: first handshake refused -> first 101", "upgrade.downtime", "s", None),
    ("  tool's view: stop step -> its own 101", "upgrade.downtime_tool", "s", None),
    ("  step backup (pg_dump, sha256, pg_restore --list)", "upgrade.step.backup", "s", None),
    ("  step migrate (migration time alone)", "upgrade.step.migrate", "s", None),
    ("  step start (fpm, daemon, then web, health-gated)", "upgrade.step.start", "s", None),
    ("downtime - migration", "upgrade.excess", "s", ("<=", 3.0, "<= 3 s")),
    ("downtime - migration - backup", "upgrade.excess_backup", "s", None),
    ("3. automatic rollback (upgrade to v0.30.1-daemon-exits)", None, None, None),
    ("start of the bad release -> failure detected", "rollback.detect", "s", None),
    ("failure detected -> first 101 again", "rollback.to_healthy", "s", None),
    ("  of which restore", "rollback.restore", "s", None),
    ("to healthy - restore", "rollback.excess", "s", ("<=", 15.0, "<= 15 s")),
    ("4. backup and restore vs raw pg_dump -Fc / pg_restore", None, None, None),
    ("tool backup (upgrade's step)", "backup.tool", "s", None),
    ("raw pg_dump -Fc via docker exec", "backup.raw", "s", None),
    ("tool backup throughput", "backup.tool_mibps", "mibps", None),
    ("backup throughput tool / raw", "backup.ratio", "x", (">=", 0.9, ">= 0.9x")),
    ("tool restore (rollback --to v0.29.2)", "restore.tool", "s", None),
    ("raw pg_restore via docker exec", "restore.raw", "s", None),
    ("restore throughput tool / raw", "restore.ratio", "x", (">=", 0.9, ">= 0.9x")),
    ("dump file size (tool)", "dump.tool_bytes", "mib", None),
    ("5. doctor and start-up", None, None, None),
    ("doctor on a healthy stack (hyperfine)", "doctor.wall", "s", ("<=", 1.0, "<= 1 s")),
    ("movim-setup --help (hyperfine)", "help.wall", "ms", None),
    ("6. memory", None, None, None),
    ("tool's peak RSS during its backup", "mem.backup_rss", "kib", None),
    ("tool's peak RSS during its restore", "mem.restore_rss", "kib", None),
    ("max RSS of the upgrade, children included (time -v)", "mem.maxrss_tree", "kib", None),
    ("backup RSS, largest size / smallest", "mem.flatness", "x", ("<=", 1.1, "flat (<= 1.1x)")),
]


def fmt(v, kind):
    if kind == "s":
        return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"
    if kind == "ms":
        return f"{v * 1000:.1f} ms"
    if kind == "x":
        return f"{v:.2f}x"
    if kind == "mib":
        return f"{v / MIB:.0f} MiB" if v >= 10 * MIB else f"{v / MIB:.1f} MiB"
    if kind == "mibps":
        return f"{v:.0f} MiB/s" if v >= 10 else f"{v:.1f} MiB/s"
    if kind == "kib":
        return f"{v / 1024:.1f} MiB"
    return f"{v:g}"


def check(op, bound, v):
    return v <= bound if op == "<=" else v >= bound


def size_order(figures):
    sizes = {f["size"] for f in figures.values() if f["size"]}
    return sorted(sizes, key=lambda s: (s[-1].upper() != "M", int(s[:-1])))


def table(doc):
    figures, m = doc["figures"], doc["machine"]
    out = [
        f"movim-setup bench, {doc['date']}, {m.get('tool', '')} ({m.get('commit', '')}), "
        f"median [min - max] of {m.get('runs')} run(s)",
        f"machine: {m.get('nproc')} x {m.get('cpu')}, {m.get('memory_gib')} GiB, kernel {m.get('kernel')}, "
        f"{m.get('engine')} ({m.get('storage_driver')}), compose {m.get('compose')}",
        f"binary: {m['binary']} (not this checkout's release build)" if m.get("other_binary") else None,
        "",
        f"{'figure':<54} {'size':>5} {'median':>10} {'[min - max]':>26}  target",
    ]
    out = [line for line in out if line is not None]
    targets = []
    section = None
    for label, metric, kind, target in ROWS:
        if metric is None:
            section = label
            continue
        keys = [metric] if metric in figures else [f"{metric}@{s}" for s in size_order(figures)
                                                   if f"{metric}@{s}" in figures]
        for key in keys:
            if section:
                out.append(section)
                section = None
            f = figures[key]
            verdict = ""
            if target:
                ok = check(target[0], target[1], f["median"])
                verdict = f"{target[2]} {'met' if ok else 'MISSED'}"
                targets.append({"figure": key, "target": target[2], "median": f["median"], "met": ok})
            rng = f"[{fmt(f['min'], kind)} - {fmt(f['max'], kind)}]"
            out.append(f"  {label:<52} {f['size'] or '':>5} {fmt(f['median'], kind):>10} {rng:>26}  {verdict}")
    if doc.get("wall_s"):
        out.append(f"\nbench wall time: {doc['wall_s'] // 60} min {doc['wall_s'] % 60} s")
    return "\n".join(out), targets


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--machine")
    ap.add_argument("--results")
    ap.add_argument("--json")
    ap.add_argument("--wall", type=int)
    ap.add_argument("--show")
    ap.add_argument("--compare", nargs=2)
    a = ap.parse_args()
    if a.compare:
        old, new = (json.load(open(p)) for p in a.compare)
        print(f"{'figure':<40} {'old':>12} {'new':>12} {'new/old':>8}")
        for key, f in new["figures"].items():
            o = old["figures"].get(key)
            if o:
                ratio = f["median"] / o["median"] if o["median"] else float("nan")
                print(f"{key:<40} {o['median']:>12.4g} {f['median']:>12.4g} {ratio:>8.2f}")
        return
    if a.show:
        print(table(json.load(open(a.show)))[0])
        return
    records = [json.loads(line) for line in open(a.results) if line.strip()]
    doc = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": json.load(open(a.machine)),
        "wall_s": a.wall,
        "figures": summarize(derive(per_run(records))),
        "records": records,
    }
    text, targets = table(doc)
    doc["targets"], doc["table"] = targets, text
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=1)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
