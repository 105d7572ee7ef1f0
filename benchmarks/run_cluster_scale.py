#!/usr/bin/env python3
"""Many networks over many worker processes on this machine, side by side
with the same slots in one process: bench_cluster_scale (steps that sleep a
known time, so every slot runs at once whatever the cores) as K workers of
one slot each, and as one process of K slots. Reports makespan against the
lower bound (networks x steps x step time / slots), grants per second, the
coordinator's CPU and the state moved.

usage: run_cluster_scale.py [--build DIR] [--workers K] [--networks N]
                            [--step-ms M] [--steps S] [--epochs E]
                            [--hop-share H]

--epochs E: each network E quanta of S steps (default 1); --hop-share H:
the workers' cluster.hop_share (0: no quantum lengthened, a round trip each).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def start_worker(bench, step_ms, log):
    proc = subprocess.Popen([bench, "worker", "--port", "0", "--step-ms",
                             str(step_ms)], stdout=subprocess.PIPE,
                            stderr=log, text=True)
    line = proc.stdout.readline()
    m = re.search(r"(127\.0\.0\.1:\d+)", line)
    if not m:
        sys.exit(f"a worker did not start: {line!r}")
    return proc, m.group(1)


def cpu_seconds(pid):
    """User and system CPU seconds of a running process."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def fields(line):
    return dict(kv.split("=") for kv in line.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--networks", type=int, default=10000)
    ap.add_argument("--step-ms", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--hop-share", default="0.05")
    a = ap.parse_args()
    bench = os.path.join(a.build, "benchmarks", "bench_cluster_scale")
    common = ["--networks", str(a.networks), "--step-ms", str(a.step_ms),
              "--steps", str(a.steps), "--epochs", str(a.epochs)]
    rows = []
    res = subprocess.run([bench, "run", "--local-slots", str(a.workers),
                          *common], capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(res.stderr)
    rows.append((f"one process, {a.workers} slots", fields(res.stdout)))
    with tempfile.TemporaryDirectory() as tmp:
        log = open(os.path.join(tmp, "workers.log"), "w")
        workers = [start_worker(bench, a.step_ms, log)
                   for _ in range(a.workers)]
        try:
            path = os.path.join(tmp, "workers.txt")
            with open(path, "w") as f:
                f.write("\n".join(w[1] for w in workers) + "\n")
            # cluster.queue_ahead on (the default) and off, side by side.
            for queue in ("true", "false"):
                before = sum(cpu_seconds(p.pid) for p, _ in workers)
                res = subprocess.run([bench, "run", "--workers-file", path,
                                      "--queue-ahead", queue, "--hop-share",
                                      a.hop_share, *common],
                                     capture_output=True, text=True)
                if res.returncode != 0:
                    sys.exit(res.stderr)
                f = fields(res.stdout)
                spent = sum(cpu_seconds(p.pid) for p, _ in workers) - before
                f["workers_cpu_s"] = f"{spent:.2f}"
                rows.append((f"{a.workers} workers, 1 slot each, queue_ahead "
                             f"= {queue}", f))
        finally:
            for proc, _ in workers:
                proc.terminate()
            for proc, _ in workers:
                proc.wait()
    print(f"{a.networks} networks x {a.epochs} x {a.steps} steps of "
          f"{a.step_ms} ms, hop_share {a.hop_share}, {os.cpu_count()} cores")
    print("| setup | grants | makespan (s) | lower bound (s) | ratio | "
          "grants/s | coordinator CPU (s) | CPU / wall | workers' CPU (s) | "
          "moves | state moved (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, f in rows:
        print(f"| {name} | {f['grants']} | {f['makespan_s']} | {f['bound_s']} "
              f"| {f['ratio']}x | {f['grants_per_s']} | "
              f"{f['coordinator_cpu_s']} | {f['coordinator_cpu_share']} | "
              f"{f.get('workers_cpu_s', '-')} | {f['moves']} | "
              f"{int(f['moved_bytes']) / 1e6:.2f} |")


if __name__ == "__main__":
    main()
