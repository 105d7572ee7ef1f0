#!/usr/bin/python3
"""How close actortrain's MLP ensembles come to the machine's limit, in one
command: the float32 GEMM peak and the copy bandwidth measured first, then
whole runs of peer-suite workloads (actortrain fused, `run()` from data
loading to results), and each workload's fused step alone on one thread.
Model FLOPs: 6 per weight and sample (2 forward, 4 backward), the count the
GFLOP/s figures of issue 18 use. Prints Markdown for docs/benchmarks.md.

usage: /usr/bin/python3 benchmarks/run_efficiency.py [--build build]
           [--kernels auto,Prescott] [W5 W1 W2 ...]

--kernels: OpenBLAS kernel families to measure side by side; "auto" is what
actortrain's programs select (see docs/benchmarks.md), any other value is
passed as OPENBLAS_CORETYPE.
"""

import argparse
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
FEATURES = {"digits": 64, "fashion": 784}
CLASSES = 10


def env_for(kernels):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if kernels != "auto":
        env["OPENBLAS_CORETYPE"] = kernels
    return env


def run_json(cmd, kernels):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=env_for(kernels)).stdout
    return json.loads(out.strip().splitlines()[-1])


def mlp_shape(workload):
    arch = workload["archs"][0]
    return [FEATURES[workload["data"]]] + arch["hidden"] + [CLASSES]


def flops_per_step(workload):
    shape = mlp_shape(workload)
    macs = sum(a * b for a, b in zip(shape, shape[1:]))
    return 6 * macs * workload["batch_size"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("workloads", nargs="*", default=["W5", "W1", "W2"])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build"))
    ap.add_argument("--kernels", default="auto")
    ap.add_argument("--slots", type=int, default=2)
    args = ap.parse_args()
    with open(os.path.join(HERE, "peers", "workloads.json")) as f:
        workloads = json.load(f)
    bench = os.path.join(args.build, "benchmarks")
    for kernels in args.kernels.split(","):
        # The limit: GEMM on one thread (a slot) and on all the slots' threads.
        one = run_json([f"{bench}/bench_fused_step", "8", "64-32-10", "32", "10", "1"],
                       kernels)
        all_ = run_json([f"{bench}/bench_fused_step", "8", "64-32-10", "32", "10",
                         str(args.slots)], kernels)
        peak1, peak = one["gemm_gflops"], all_["gemm_gflops"]
        print(f"### OpenBLAS kernels: {kernels}\n")
        print(f"Machine limit, same invocation: float32 GEMM (2048^3) "
              f"{peak1:.1f} GFLOP/s on 1 thread, {peak:.1f} GFLOP/s on "
              f"{args.slots}; copy {one['copy_gbps']:.1f} GB/s.\n")
        print(f"| workload | whole run (s) | network-steps/s | GFLOP/s | of {args.slots}-thread peak "
              f"| fused step alone, 1 thread (GFLOP/s) | of 1-thread peak |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in args.workloads:
            w = workloads[name]
            run = run_json([f"{bench}/bench_peer_workloads", "actortrain-fused", name,
                            str(args.slots)], kernels)
            gflops = run["network_steps"] * flops_per_step(w) / run["seconds"] / 1e9
            shape = "-".join(str(x) for x in mlp_shape(w))
            members = min(32, w["archs"][0]["networks"])
            step = run_json([f"{bench}/bench_fused_step", str(members), shape,
                             str(w["batch_size"]), "200", "1"], kernels)
            print(f"| {name} ({shape}, batch {w['batch_size']}) | {run['seconds']:.2f} | "
                  f"{run['network_steps'] / run['seconds']:,.0f} | {gflops:.1f} | "
                  f"{gflops / peak:.0%} | {step['step_gflops']:.1f} | "
                  f"{step['step_gflops'] / peak1:.0%} |")
        print()


if __name__ == "__main__":
    main()
