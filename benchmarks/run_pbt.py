#!/usr/bin/env python3
"""Population Based Training against plain random search, side by side in one
invocation: the same N random configurations (log-uniform learning rate and
weight decay, one MLP 784-64-10) trained on Fashion-MNIST for E epochs on 2
slots, once as they were drawn and once with `scheduler.search = "pbt"`
(interval 2 epochs, quantile 0.25, resample probability 0.25, the learning
rate resampled from the same range or perturbed by 0.8 / 1.2).

Both train every network for its whole budget, so they cost the same
slot-seconds; PBT spends them on copies of the better networks. The random
run's best is the best fixed-learning-rate member of the population. PBT's
metric (validation accuracy) is evaluated after every epoch, which the random
run does not do, so a third run, "observed", trains the same population
under a search that never acts (the median rule comparing with more networks
than there are:
every epoch evaluated on the validation split, quanta ending at epochs, no
decision); the extra slot-seconds of the PBT run over it are the cost of
PBT's copies and kept versions (exploit overhead). Reports,
from each run's results.db: slot-seconds, the slots' busy fraction, the best
and the median final test accuracy, the copies made and refused.

usage: run_pbt.py [--build DIR] [--epochs E] [--samples N] [--deterministic]
                  [--workload adam|sgd]
"""
import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

FASHION = "/usr/share/datasets/fashion-mnist"

EXPERIMENT = """name = "pbt-bench-{mode}"
[data]
format = "idx"
train = "{data}/train-images-idx3-ubyte.gz"
train_labels = "{data}/train-labels-idx1-ubyte.gz"
test = "{data}/t10k-images-idx3-ubyte.gz"
test_labels = "{data}/t10k-labels-idx1-ubyte.gz"
[model]
hidden = [64]
[optimizer]
kind = "{optimizer}"
momentum = {momentum}
[train]
epochs = {epochs}
batch_size = 128
seed = 5
validation_fraction = 0.1
[search]
samples = {samples}
"optimizer.lr" = {{ loguniform = [{lr_low}, {lr_high}] }}
"optimizer.weight_decay" = {{ loguniform = [1e-6, 1e-2] }}
[scheduler]
slots = 2
search = "{search}"
deterministic = {deterministic}
interval_epochs = 2
min_samples = {min_samples}
"""


# "adam": Adam over a wide range of rates, where a fixed rate does about as
# well as any schedule. "sgd": SGD with momentum, where a high rate learns
# fast at first and a lower one ends better, so a schedule beats every fixed
# rate (the case PBT is for).
WORKLOADS = {
    "adam": dict(optimizer="adam", momentum=0, lr_low=1e-5, lr_high=1e-1),
    "sgd": dict(optimizer="sgd", momentum=0.9, lr_low=1e-3, lr_high=1.0),
}


def run(app, folder, mode, args):
    toml = os.path.join(folder, f"{mode}.toml")
    with open(toml, "w") as f:
        f.write(EXPERIMENT.format(
            mode=mode, data=FASHION, epochs=args.epochs,
            **WORKLOADS[args.workload],
            samples=args.samples,
            search={"pbt": "pbt", "observed": "median"}.get(mode, "none"),
            min_samples=args.samples + 1 if mode == "observed" else 3,
            deterministic="true" if args.deterministic else "false"))
    out = os.path.join(folder, mode)
    t0 = time.perf_counter()
    res = subprocess.run([app, "run", toml, "--output", out, "--quiet"],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(f"{mode} run failed: {res.stdout}{res.stderr}")
    with sqlite3.connect(os.path.join(out, "results.db")) as db:
        grants = db.execute("SELECT slot, start, end FROM grants").fetchall()
        finals = [row[0] for row in db.execute(
            "SELECT test_accuracy FROM final_metrics WHERE test_accuracy IS NOT "
            "NULL")]
        actions = dict(db.execute(
            "SELECT action, count(*) FROM decisions GROUP BY action"))
        # The best network's learning rate along its exploits: the schedule
        # PBT found for it.
        best_id = db.execute(
            "SELECT network_id FROM final_metrics WHERE test_accuracy IS NOT "
            "NULL ORDER BY test_accuracy DESC LIMIT 1").fetchone()[0]
        label = db.execute(
            "SELECT g.label FROM networks n JOIN groups g ON n.group_id = g.id "
            "WHERE n.id = ?", (best_id,)).fetchone()[0]
        schedule = db.execute(
            "SELECT epoch, old_hyperparameters, new_hyperparameters FROM "
            "decisions WHERE network_id = ? AND action = 'exploit' ORDER BY "
            "epoch", (best_id,)).fetchall()
    busy = sum(g[2] - g[1] for g in grants)
    span = max(g[2] for g in grants) - min(g[1] for g in grants)
    slots = len({g[0] for g in grants})
    return dict(wall=wall, busy=busy, share=busy / (span * slots),
                best=max(finals), median=statistics.median(finals),
                exploits=actions.get("exploit", 0),
                schedule=schedule, label=label,
                refused=actions.get("refused", 0))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--deterministic", action="store_true")
    ap.add_argument("--workload", choices=sorted(WORKLOADS), default="adam")
    args = ap.parse_args()
    app = os.path.join(args.build, "apps/actortrain/actortrain")
    with tempfile.TemporaryDirectory() as folder:
        runs = {mode: run(app, folder, mode, args)
                for mode in ("random", "observed", "pbt")}
    print(f"{args.workload}: {args.samples} configurations, {args.epochs} "
          f"epochs, 2 slots"
          f"{', deterministic' if args.deterministic else ''}")
    print(f"{'run':<8} {'wall_s':>7} {'slot_s':>8} {'busy':>6} "
          f"{'best_acc':>9} {'median_acc':>11} {'copies':>7} {'refused':>8}")
    for mode, r in runs.items():
        print(f"{mode:<8} {r['wall']:>7.1f} {r['busy']:>8.1f} "
              f"{100 * r['share']:>5.1f}% {r['best']:>9.4f} "
              f"{r['median']:>11.4f} {r['exploits']:>7} {r['refused']:>8}")
    rnd, obs, pbt = runs["random"], runs["observed"], runs["pbt"]
    print(f"exploit overhead (pbt slot-seconds over observed): "
          f"{100 * (pbt['busy'] / obs['busy'] - 1):+.1f}%; evaluating the "
          f"metric (observed over random): "
          f"{100 * (obs['busy'] / rnd['busy'] - 1):+.1f}%")
    print(f"best fixed-rate network: {rnd['label']}; PBT's best started as "
          f"{pbt['label']}")
    if pbt["schedule"]:
        lr = lambda text: text.split("=")[-1] if text else "?"
        steps = ", ".join(f"epoch {e}: {lr(new)}" for e, _, new in
                          pbt["schedule"])
        print(f"learning rate of PBT's best network: "
              f"{lr(pbt['schedule'][0][1])}, then {steps}")
    print(f"slot-seconds pbt / random: {pbt['busy'] / rnd['busy']:.2f}x; "
          f"best accuracy pbt - random: {pbt['best'] - rnd['best']:+.4f}; "
          f"median: {pbt['median'] - rnd['median']:+.4f}")


if __name__ == "__main__":
    main()
