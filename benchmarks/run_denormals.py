#!/usr/bin/python3
"""Flushing denormal floats on the slots, side by side in one invocation: the
population of run_pbt.py (8 random learning rates and weight decays, MLP
784-64-10, Adam, Fashion-MNIST, 12 epochs, 2 slots), once with LibTorch's
defaults (ACTORTRAIN_KEEP_DENORMALS=1: IEEE denormals) and once as actortrain
runs by default (slot threads flush denormals to zero), each without and with
PBT. Reports slot-seconds, the slowest epoch, best and median accuracy.

usage: run_denormals.py [--build DIR] [--epochs E] [--samples N]
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_pbt  # noqa: E402  (its experiment)


def run(app, folder, name, search, keep, args):
    toml = os.path.join(folder, f"{name}.toml")
    with open(toml, "w") as f:
        f.write(run_pbt.EXPERIMENT.format(
            mode=name, data=run_pbt.FASHION, epochs=args.epochs,
            samples=args.samples, search=search, min_samples=3,
            deterministic="false"))
    out = os.path.join(folder, name)
    env = dict(os.environ)
    if keep:
        env["ACTORTRAIN_KEEP_DENORMALS"] = "1"
    res = subprocess.run([app, "run", toml, "--output", out, "--quiet"],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{name} failed: {res.stdout}{res.stderr}")
    with sqlite3.connect(os.path.join(out, "results.db")) as db:
        slot_s = db.execute("SELECT sum(end - start) FROM grants").fetchone()[0]
        slowest = db.execute("SELECT max(seconds) FROM epoch_metrics"
                             ).fetchone()[0]
        accs = [a for (a,) in db.execute(
            "SELECT test_accuracy FROM final_metrics")]
    return slot_s, slowest, max(accs), statistics.median(accs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--samples", type=int, default=8)
    args = ap.parse_args()
    app = os.path.join(args.build, "apps/actortrain/actortrain")
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for search in ("none", "pbt"):
            for keep in (True, False):
                name = f"{search}-{'ieee' if keep else 'flush'}"
                rows[name] = run(app, folder, name, search, keep, args)
    print(f"{args.samples} configurations, {args.epochs} epochs, 2 slots")
    print(f"{'run':<12} {'slot_s':>8} {'slowest_epoch_s':>16} {'best_acc':>9} "
          f"{'median_acc':>11}")
    for name, (slot_s, slowest, best, median) in rows.items():
        print(f"{name:<12} {slot_s:>8.1f} {slowest:>16.2f} {best:>9.4f} "
              f"{median:>11.4f}")
    for search in ("none", "pbt"):
        ieee, flush = rows[f"{search}-ieee"], rows[f"{search}-flush"]
        print(f"{search}: IEEE denormals / flushed slot-seconds "
              f"{ieee[0] / flush[0]:.2f}x")


if __name__ == "__main__":
    main()
