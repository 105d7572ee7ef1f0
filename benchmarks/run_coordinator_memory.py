#!/usr/bin/env python3
"""The coordinator's memory in a cluster run whose networks have large states:
N networks (an MLP 16-1024-1024-10, 13 MB of state with Adam) trained on two
`actortrain worker` processes of one slot (loopback, `--no-local`), round
robin in quanta of one epoch, so that every network holds a checkpoint while
the others train. Reports the coordinator's peak resident memory (its own,
from wait4) and, with heaptrack installed, its peak heap, for each build and
network count side by side.

usage: run_coordinator_memory.py [--build DIR ...] [--networks N,...]
                                 [--unwritten-mb M,...] [--pbt]

--pbt trains 4 epochs with asynchronous PBT (interval 2) instead of 3 without
a search: donors' kept states are what the coordinator could hold then.

--unwritten-mb runs the last build once more per value of output.unwritten_mb
(builds before the key refuse it).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

EXPERIMENT = """name = "coordinator-memory"
[data]
format = "synthetic"
samples = 2048
features = 16
[model]
hidden = [1024, 1024]
[train]
networks = {networks}
epochs = {epochs}
fuse = "off"
{train}[scheduler]
slots = 1
policy = "round_robin"
{search}[cluster]
hop_share = 0
{output}"""


def start_worker(app, log):
    proc = subprocess.Popen([app, "worker", "--port", "0", "--slots", "1",
                             "--once"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    port = re.search(r":(\d+)$", line.strip()).group(1)
    return proc, f"127.0.0.1:{port}"


def run_once(app, exp, out, log, prefix=()):
    """Runs the experiment on two fresh workers; returns the coordinator's
    wall seconds and peak RSS in MB."""
    workers = [start_worker(app, log) for _ in range(2)]
    shutil.rmtree(out, ignore_errors=True)
    args = [*prefix, app, "run", exp, "--output", out, "--quiet", "--no-local",
            "--workers", ",".join(w[1] for w in workers)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        for w, _ in workers:
            w.kill()
        log.flush()
        with open(log.name) as f:
            sys.exit(f"{app}: the run failed:\n{f.read()[-2000:]}")
    for w, _ in workers:
        w.wait(timeout=60)
    return elapsed, usage.ru_maxrss / 1024


def peak_heap(app, exp, out, log, tmp):
    """The coordinator's peak heap in MB, measured by heaptrack."""
    if not shutil.which("heaptrack"):
        return None
    trace = os.path.join(tmp, "trace")
    run_once(app, exp, out, log, ("heaptrack", "-o", trace))
    text = subprocess.run(["heaptrack_print", "-f", trace + ".zst",
                           "--print-peaks", "0", "--print-allocators", "0",
                           "--print-leaks", "0", "--print-temporary", "0"],
                          capture_output=True, text=True).stdout
    os.remove(trace + ".zst")
    m = re.search(r"peak heap memory consumption: ([\d.]+)([KMG])", text)
    scale = {"K": 1 / 1024, "M": 1, "G": 1024}[m.group(2)]
    return float(m.group(1)) * scale


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="append")
    ap.add_argument("--networks", default="24,48")
    ap.add_argument("--unwritten-mb", default="")
    ap.add_argument("--pbt", action="store_true")
    a = ap.parse_args()
    builds = a.build or ["build"]
    counts = [int(n) for n in a.networks.split(",")]
    limits = [""] + [m for m in a.unwritten_mb.split(",") if m]
    print("| build | networks | output.unwritten_mb | coordinator peak RSS "
          "(MB) | peak heap (MB) | wall (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp, \
            open(os.path.join(tmp, "log"), "w") as log:
        for n in counts:
            for limit in limits:
                output = f"[output]\nunwritten_mb = {limit}\n" if limit else ""
                exp = os.path.join(tmp, f"exp{n}-{limit}.toml")
                with open(exp, "w") as f:
                    f.write(EXPERIMENT.format(
                        networks=n, output=output, epochs=4 if a.pbt else 3,
                        train="validation_fraction = 0.2\n" if a.pbt else "",
                        search='search = "pbt"\ninterval_epochs = 2\n'
                        if a.pbt else ""))
                for build in builds if not limit else builds[-1:]:
                    app = os.path.join(build, "apps/actortrain/actortrain")
                    out = os.path.join(tmp, "out")
                    wall, rss = run_once(app, exp, out, log)
                    heap = peak_heap(app, exp, out, log, tmp)
                    print(f"| {build} | {n} | {limit or 'default'} "
                          f"| {rss:.0f} "
                          f"| {'-' if heap is None else f'{heap:.0f}'} "
                          f"| {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
