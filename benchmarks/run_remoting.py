#!/usr/bin/env python3
"""Overhead of remoting: one experiment on 2 slots in one process versus 1 slot
in each of two `actortrain worker` processes (loopback), side by side in one
invocation. Reports the time ratio and the messaging cost per quantum.

usage: run_remoting.py [--build DIR] [--repeat R] [--epochs E] [--variants V,...]
"""
import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

# Two workloads: small networks trained unfused (many short quanta, small
# states) and the same networks fused (few quanta, states of whole groups).
EXPERIMENT = """name = "remoting-{fuse}"
[data]
format = "synthetic"
samples = 4096
test_samples = 512
features = 32
classes = 10
partition = "stratified"
[model]
hidden = [64]
[train]
networks = 64
epochs = {epochs}
batch_size = 32
seed = 1
fuse = "{fuse}"
[scheduler]
slots = 2
"""


def start_worker(app, log):
    proc = subprocess.Popen([app, "worker", "--port", "0", "--slots", "1"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    port = re.search(r":(\d+)$", line.strip()).group(1)
    return proc, f"127.0.0.1:{port}"


def timed_run(app, args):
    t0 = time.perf_counter()
    res = subprocess.run([app, "run", *args, "--quiet"], capture_output=True,
                         text=True)
    elapsed = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"run failed: {res.stdout}{res.stderr}")
    return elapsed


def quanta(out):
    """Quanta run, quanta that moved a group's state to another node, and the
    bytes of state moved."""
    with sqlite3.connect(os.path.join(out, "results.db")) as db:
        return db.execute("SELECT COUNT(*), SUM(moved_bytes > 0), "
                          "SUM(moved_bytes) FROM grants").fetchone()


# The remote runs' [cluster] settings, side by side.
VARIANTS = {
    "default": "",
    "no-queue": "queue_ahead = false\n",
    "short": "hop_share = 0\n",
    "short-no-queue": "hop_share = 0\nqueue_ahead = false\n",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--variants", default="default",
                    help="comma-separated: " + ", ".join(VARIANTS) +
                    " (default: cluster defaults; no-queue: "
                    "cluster.queue_ahead = false; short: cluster.hop_share "
                    "= 0, quanta not lengthened)")
    a = ap.parse_args()
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            sys.exit(f"unknown variant {v!r}: expected one of {list(VARIANTS)}")
    app = os.path.join(a.build, "apps", "actortrain", "actortrain")
    with tempfile.TemporaryDirectory() as tmp:
        log = open(os.path.join(tmp, "workers.log"), "w")
        workers = [start_worker(app, log) for _ in range(2)]
        addresses = ",".join(w[1] for w in workers)
        print("| workload | workers' [cluster] | quanta | one process, 2 slots "
              "(s) | 2 workers, 1 slot each (s) | ratio | messaging per "
              "quantum (ms) | moves | state "
              "moved per quantum (kB) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        try:
            for fuse in ("off", "auto"):
                exp = os.path.join(tmp, f"{fuse}.toml")
                with open(exp, "w") as f:
                    f.write(EXPERIMENT.format(fuse=fuse, epochs=a.epochs))
                remote_exps = {}
                for v in variants:
                    remote_exps[v] = os.path.join(tmp, f"{fuse}-{v}.toml")
                    with open(remote_exps[v], "w") as f:
                        f.write(EXPERIMENT.format(fuse=fuse, epochs=a.epochs) + "[cluster]\n" +
                                VARIANTS[v])
                local = []
                remote = {v: [] for v in variants}
                stats = {}
                # Interleaved, so that the machine's drift hits all alike.
                for r in range(a.repeat):
                    out = os.path.join(tmp, f"{fuse}-local-{r}")
                    local.append(timed_run(app, [exp, "--output", out]))
                    for v in variants:
                        out = os.path.join(tmp, f"{fuse}-{v}-{r}")
                        remote[v].append(timed_run(
                            app, [remote_exps[v], "--output", out,
                                  "--workers", addresses, "--no-local"]))
                        stats[v] = quanta(out)
                lt = statistics.median(local)
                for v in variants:
                    rt = statistics.median(remote[v])
                    n, moves, moved = stats[v]
                    # Two slots work at once: the extra wall time, spread over
                    # the quanta each slot ran, is what one quantum's round
                    # trip costs.
                    per_quantum = (rt - lt) * 2 / n * 1000
                    print(f"| 64 MLPs 32-64-10, {a.epochs} epochs, fuse = \"{fuse}\" | {v} | {n} "
                          f"| {lt:.2f} | {rt:.2f} | {rt / lt:.2f}x | "
                          f"{per_quantum:.2f} | {moves} | {(moved or 0) / n / 1e3:.2f} |")
        finally:
            for proc, _ in workers:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
