#!/usr/bin/python3
"""The peer benchmark suite in one command: every workload of
peers/workloads.json through six systems, side by side, each in a fresh
process on the same cores. Prints a Markdown table (network-steps per second,
each system's ratio to actortrain fused, peak memory) for docs/benchmarks.md.

usage: /usr/bin/python3 benchmarks/run_peers.py [--build build] [--threads 2]
                                                [--repeat 1] [W1 W2 ...]
Needs Debian's python3-torch and python3-sklearn (digits), and
dataset-fashion-mnist; installs nothing.
"""

import argparse
import json
import os
import subprocess
import sys

import blas_env

HERE = os.path.dirname(os.path.abspath(__file__))

SYSTEMS = [
    ("python-sequential", "Python + PyTorch, sequential loop"),
    ("python-pool", "Python multiprocessing.Pool, a process per core"),
    ("python-vmap", "functorch.vmap over stacked parameters"),
    ("cpp", "hand-written C++ LibTorch loop"),
    ("actortrain-unfused", "actortrain, fuse = \"off\""),
    ("actortrain-fused", "actortrain, fuse = \"auto\""),
]


# Every system multiplies with the kernels actortrain's programs select.
ENV = blas_env.kernels_env()


def command(system, workload, args):
    if system.startswith("python-"):
        return [sys.executable, os.path.join(HERE, "peers", "peers.py"),
                system[len("python-"):], workload, "--threads", str(args.threads)]
    return [os.path.join(args.build, "benchmarks", "bench_peer_workloads"),
            system, workload, str(args.threads)]


def measure(system, workload, args):
    """The best of `repeat` runs (least disturbed by the machine)."""
    best = None
    for _ in range(args.repeat):
        out = subprocess.run(command(system, workload, args), check=True,
                             capture_output=True, text=True, env=ENV).stdout
        result = json.loads(out.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    best["steps_per_second"] = best["network_steps"] / best["seconds"]
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="*")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with open(os.path.join(HERE, "peers", "workloads.json")) as f:
        workloads = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    # GPU workloads (benchmarks/run_gpu.py) run only when named.
    names = args.workloads or [k for k, v in workloads.items() if not v.get("gpu")]
    print(f"threads per system: {args.threads}; best of {args.repeat} run(s); "
          f"OpenBLAS kernels: {ENV.get('OPENBLAS_CORETYPE', 'its own choice')}\n")
    for name in names:
        results = {}
        for system, _ in SYSTEMS:
            results[system] = measure(system, name, args)
            print(f"{name} {system}: {results[system]}", file=sys.stderr)
        ours = results["actortrain-fused"]["steps_per_second"]
        steps = {r["network_steps"] for r in results.values()}
        print(f"**{name}**: {workloads[name]['description']} "
              f"({'/'.join(str(s) for s in sorted(steps))} network-steps)\n")
        print("| system | network-steps/s | actortrain fused is | peak memory (MiB) |")
        print("|---|---:|---:|---:|")
        for system, label in SYSTEMS:
            r = results[system]
            ratio = ours / r["steps_per_second"]
            print(f"| {label} | {r['steps_per_second']:,.0f} | {ratio:.2f}x | "
                  f"{r['peak_mb']:,.0f} |")
        print()


if __name__ == "__main__":
    main()
