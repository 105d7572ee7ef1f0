#!/usr/bin/python3
"""The GPU benchmark in one command: a GPU workload of peers/workloads.json
(G1: 1,660 small MLPs) on one GPU through actortrain fused, actortrain
unfused on 1 and on K streams, a Python loop and functorch.vmap, each in a
fresh process, with the GPU's busy fraction sampled
by nvidia-smi while it runs. Prints a Markdown table for docs/benchmarks.md.

usage: python3 benchmarks/run_gpu.py [--build DIR] [--device cuda:0]
                                     [--streams K] [--loop-networks N]
                                     [--timeout S] [WORKLOAD=G1]

The Python loop trains the first N networks only (their rate, in
bounded time; N = 166 by default, a tenth). `--device cpu` runs the same
programs on the CPU (a check of this script where there is no GPU).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class busy_sampler:
    """nvidia-smi's utilization.gpu every 100 ms while a system runs."""

    def __init__(self, device):
        self.samples = []
        self.proc = None
        index = device.split(":")[1] if ":" in device else "0"
        if device.startswith("cuda") and shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(
                ["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu",
                 "--format=csv,noheader,nounits", "-lms", "100"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass

    def stop(self):
        if not self.proc:
            return None
        self.proc.terminate()
        self.proc.wait()
        self.reader.join(timeout=2)
        if not self.samples:
            return None
        # The share of samples in which a kernel ran (utilization > 0) and
        # the mean utilization.
        busy = sum(1 for s in self.samples if s > 0) / len(self.samples)
        return busy, sum(self.samples) / len(self.samples)


def systems(args):
    bench = os.path.join(args.build, "benchmarks", "bench_peer_workloads")
    peers = [sys.executable, os.path.join(HERE, "peers", "peers.py")]
    gpu = ["--device", args.device]
    n = ["--networks", str(args.loop_networks)]
    return [
        ("actortrain fused", [bench, "actortrain-fused", args.workload, "2",
                              *gpu, "--streams", str(args.streams)]),
        (f"actortrain unfused, {args.streams} streams",
         [bench, "actortrain-unfused", args.workload, "2", *gpu,
          "--streams", str(args.streams)]),
        ("actortrain unfused, 1 stream",
         [bench, "actortrain-unfused", args.workload, "2", *gpu,
          "--streams", "1"]),
        ("functorch.vmap", [*peers, "vmap", args.workload, *gpu]),
        (f"Python loop (first {args.loop_networks})",
         [*peers, "sequential", args.workload, *gpu, *n]),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workload", nargs="?", default="G1")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--device", default="cuda:0")
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--loop-networks", type=int, default=166)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    with open(os.path.join(HERE, "peers", "workloads.json")) as f:
        workload = json.load(f)[args.workload]
    rows = []
    for name, cmd in systems(args):
        sampler = busy_sampler(args.device)
        t0 = time.perf_counter()
        try:
            out = subprocess.run(cmd, capture_output=True, text=True,
                                 timeout=args.timeout)
            wall = time.perf_counter() - t0
            busy = sampler.stop()
            if out.returncode != 0:
                rows.append((name, None, None, busy, f"exit {out.returncode}: "
                             f"{out.stderr.strip().splitlines()[-1:]}"))
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((name, r["network_steps"], r["seconds"], busy, ""))
        except subprocess.TimeoutExpired:
            rows.append((name, None, None, sampler.stop(),
                         f"over {args.timeout:.0f} s"))
        print(f"{name}: {rows[-1]}", file=sys.stderr, flush=True)
    fused = rows[0][1] / rows[0][2] if rows[0][1] else None
    print(f"**{args.workload}** on {args.device}: {workload['description']}; "
          f"actortrain's time is its whole run(), the others' start after "
          f"loading the data\n")
    print("| system | network-steps | seconds | network-steps/s | "
          "actortrain fused is | GPU busy (samples > 0) | mean utilization |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, steps, seconds, busy, note in rows:
        if steps is None:
            print(f"| {name} | | | | | | {note} |")
            continue
        rate = steps / seconds
        ratio = f"{fused / rate:.2f}x" if fused else ""
        b = f"{100 * busy[0]:.0f}%" if busy else "n/a"
        u = f"{busy[1]:.0f}%" if busy else "n/a"
        print(f"| {name} | {steps} | {seconds:.2f} | {rate:,.0f} | {ratio} | "
              f"{b} | {u} |")


if __name__ == "__main__":
    main()
