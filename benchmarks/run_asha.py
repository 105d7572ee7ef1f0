#!/usr/bin/env python3
"""ASHA against the full budget, side by side in one invocation: the same 64
random configurations (log-uniform learning rate and weight decay, a choice of
widths) trained on Fashion-MNIST for 16 epochs on 2 slots, once with
`scheduler.search = "asha"` (stopping, eta 3, grace 1) and once to the end.

Reports, from each run's results.db: slot-seconds (the recorded grants), the
slots' busy fraction, the best test accuracy found at any evaluated epoch, and
the slot-seconds each needed to first reach the full-budget best accuracy
within 0.5 points, as a ratio.

usage: run_asha.py [--build DIR] [--epochs E] [--samples N]
                   [--asha-policy fifo|round_robin|...] [--eta ETA]
                   [--asha-mode stopping|promotion]
"""
import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

FASHION = "/usr/share/datasets/fashion-mnist"

EXPERIMENT = """name = "asha-bench-{mode}"
[data]
format = "idx"
train = "{data}/train-images-idx3-ubyte.gz"
train_labels = "{data}/train-labels-idx1-ubyte.gz"
test = "{data}/t10k-images-idx3-ubyte.gz"
test_labels = "{data}/t10k-labels-idx1-ubyte.gz"
[optimizer]
kind = "adam"
[train]
epochs = {epochs}
batch_size = 128
seed = 5
validation_fraction = 0.1
[search]
samples = {samples}
"optimizer.lr" = {{ loguniform = [1e-4, 1e-1] }}
"optimizer.weight_decay" = {{ loguniform = [1e-6, 1e-2] }}
"model.hidden" = {{ choice = [[32], [64], [128]] }}
[scheduler]
slots = 2
search = "{search}"
policy = "{policy}"
reduction_factor = {eta}
asha_mode = "{asha_mode}"
"""


def run(app, folder, mode, epochs, samples, policy="fifo", eta=3,
        asha_mode="stopping"):
    toml = os.path.join(folder, f"{mode}.toml")
    with open(toml, "w") as f:
        f.write(EXPERIMENT.format(mode=mode, data=FASHION, epochs=epochs,
                                  samples=samples, policy=policy, eta=eta,
                                  asha_mode=asha_mode,
                                  search="asha" if mode == "asha" else "none"))
    out = os.path.join(folder, mode)
    t0 = time.perf_counter()
    res = subprocess.run([app, "run", toml, "--output", out, "--quiet"],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{mode} run failed: {res.stdout}{res.stderr}")
    return out, wall


def measure(out):
    """Grants in order of their end, each network's epochs, the run's wall
    time and its slots."""
    with sqlite3.connect(os.path.join(out, "results.db")) as db:
        grants = db.execute("SELECT network_id, slot, start, end, steps FROM "
                            "grants ORDER BY end, rowid").fetchall()
        epochs = {}
        for net, steps, acc in db.execute(
                "SELECT network_id, steps, test_accuracy FROM epoch_metrics "
                "WHERE test_accuracy IS NOT NULL ORDER BY network_id, epoch"):
            epochs.setdefault(net, []).append((steps, acc))
        stopped = db.execute("SELECT count(*) FROM networks WHERE "
                             "stop_reason = 'search'").fetchone()[0]
    return grants, epochs, stopped


def slot_seconds_to(grants, epochs, target):
    """Slot-seconds spent until some network's evaluated epoch reaches
    `target` test accuracy (None: never)."""
    spent = 0.0
    done = {}
    for net, _slot, start, end, steps in grants:
        spent += end - start
        done[net] = done.get(net, 0) + steps
        for s, acc in epochs.get(net, []):
            if s <= done[net] and acc >= target:
                return spent
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--asha-policy", default="fifo",
                    help="scheduler.policy of the ASHA run (the full run: fifo)")
    ap.add_argument("--eta", type=int, default=3,
                    help="scheduler.reduction_factor of the ASHA run")
    ap.add_argument("--asha-mode", default="stopping",
                    choices=["stopping", "promotion"],
                    help="scheduler.asha_mode of the ASHA run")
    args = ap.parse_args()
    app = os.path.join(args.build, "apps/actortrain/actortrain")
    with tempfile.TemporaryDirectory() as folder:
        runs = {}
        for mode in ("full", "asha"):
            out, wall = run(app, folder, mode, args.epochs, args.samples,
                            args.asha_policy if mode == "asha" else "fifo",
                            args.eta, args.asha_mode)
            grants, epochs, stopped = measure(out)
            slots = len({g[1] for g in grants})
            busy = sum(g[3] - g[2] for g in grants)
            span = max(g[3] for g in grants) - min(g[2] for g in grants)
            best = max(acc for e in epochs.values() for _, acc in e)
            runs[mode] = dict(grants=grants, epochs=epochs, wall=wall,
                              busy=busy, span=span, slots=slots, best=best,
                              stopped=stopped)
        target = runs["full"]["best"] - 0.005
        print(f"{args.samples} configurations, {args.epochs} epochs, 2 slots; "
              f"target: full-budget best {runs['full']['best']:.4f} - 0.005")
        print(f"{'run':<6} {'wall_s':>8} {'slot_s':>9} {'busy':>6} "
              f"{'stopped':>8} {'best_acc':>9} {'slot_s_to_target':>17}")
        for mode, r in runs.items():
            r["to"] = slot_seconds_to(r["grants"], r["epochs"], target)
            to = "never" if r["to"] is None else f"{r['to']:.1f}"
            print(f"{mode:<6} {r['wall']:>8.1f} {r['busy']:>9.1f} "
                  f"{100 * r['busy'] / (r['span'] * r['slots']):>5.1f}% "
                  f"{r['stopped']:>8} {r['best']:>9.4f} {to:>17}")
        full, asha = runs["full"], runs["asha"]
        print(f"slot-seconds full / asha: {full['busy'] / asha['busy']:.2f}x")
        if full["to"] is not None and asha["to"] is not None:
            print(f"slot-seconds to target full / asha: "
                  f"{full['to'] / asha['to']:.2f}x")


if __name__ == "__main__":
    main()
