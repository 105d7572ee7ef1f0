#!/usr/bin/python3
"""One compute-bound CNN (channels [32, 64], a 128-wide dense layer, Adam
1e-3, global batch 64) trained on Fashion-MNIST for a fixed time, side by side
in one invocation:

  - actortrain on 1 slot (train.replicas = 1),
  - actortrain on 2 slots with 2 synchronous replicas (train.replicas = 2),
  - the same with asynchronous replicas (train.sync = "async", staleness 4:
    each replica pushes the gradient of a whole batch of 64),
  - Python PyTorch DistributedDataParallel, gloo backend, 2 processes on
    127.0.0.1, each computing half of the same global batch,
  - a straggler: both replica kinds again with replica 1 made 2x slower
    (ACTORTRAIN_SLOW_REPLICA=1:2),
  - the machine's limit beside them: a float32 GEMM on 1 and on 2 threads.

  - 2 synchronous replicas with replica 1 on an `actortrain worker` process
    on 127.0.0.1 (1 slot here, 1 there): the cost of sending the weights
    out and the gradient back every step.

Every slot and process has one intra-op thread, and every system multiplies
with the same OpenBLAS kernels (blas_env.py). Reports optimizer steps per
second of training, their ratios, and the test accuracy after the time.
Needs Debian's python3-torch (gloo included); run with /usr/bin/python3.

usage: run_replicas.py [--build DIR] [--seconds T]
"""
import argparse
import gzip
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time

import blas_env  # noqa: F401  (before torch: the same kernels as actortrain)
import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F

FASHION = "/usr/share/datasets/fashion-mnist"
BATCH = 64

EXPERIMENT = """name = "replicas-bench-{mode}"
[data]
format = "idx"
train = "{data}/train-images-idx3-ubyte.gz"
train_labels = "{data}/train-labels-idx1-ubyte.gz"
test = "{data}/t10k-images-idx3-ubyte.gz"
test_labels = "{data}/t10k-labels-idx1-ubyte.gz"
[model]
kind = "cnn"
channels = [32, 64]
hidden = [128]
[optimizer]
kind = "adam"
lr = 0.001
[train]
epochs = 50
batch_size = {batch}
seed = 3
max_seconds = {seconds}
eval_every = 0
replicas = {replicas}
{sync}fuse = "off"
[scheduler]
slots = {slots}
threads_per_slot = 1
"""


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big")
             for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8,
                         offset=4 + 4 * dims).reshape(shape)


def load():
    def images(name):
        x = read_idx(os.path.join(FASHION, name)).astype(np.float32) / 255.0
        return torch.from_numpy(x).unsqueeze(1)

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(FASHION, name))
                                .astype(np.int64))

    return (images("train-images-idx3-ubyte.gz"),
            labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"),
            labels("t10k-labels-idx1-ubyte.gz"))


def cnn():
    """actortrain's built-in CNN for channels [32, 64], hidden [128]."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
        nn.Linear(128, 10))


def actortrain(app, folder, replicas, seconds, sync="allreduce", slow=None,
               worker=None):
    mode = (f"replicas-{replicas}-{sync}-{'slow' if slow else 'even'}"
            f"{'-worker' if worker else ''}")
    toml = os.path.join(folder, f"{mode}.toml")
    with open(toml, "w") as f:
        f.write(EXPERIMENT.format(
            mode=mode, data=FASHION, batch=BATCH, seconds=seconds,
            replicas=replicas, slots=1 if worker else replicas,
            sync="" if replicas == 1 else f'sync = "{sync}"\n'))
    out = os.path.join(folder, mode)
    env = dict(os.environ)
    if slow:
        env["ACTORTRAIN_SLOW_REPLICA"] = slow
    cmd = [app, "run", toml, "--output", out, "--quiet"]
    if worker:
        cmd += ["--workers", worker]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode != 0:
        sys.exit(f"{mode} failed: {res.stdout}{res.stderr}")
    with sqlite3.connect(os.path.join(out, "results.db")) as db:
        steps, = db.execute("SELECT steps FROM networks").fetchone()
        acc, train_s = db.execute(
            "SELECT test_accuracy, train_seconds FROM final_metrics"
        ).fetchone()
    return steps, train_s, acc


def with_worker(app, folder, replicas, seconds):
    """Synchronous replicas with one slot here and one on a worker process."""
    log = open(os.path.join(folder, "worker.log"), "w+")
    worker = subprocess.Popen([app, "worker", "--port", "0", "--slots", "1",
                               "--bind", "127.0.0.1"], stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        for _ in range(600):
            log.seek(0)
            m = re.search(r"listening on [^:]+:([0-9]+)", log.read())
            if m:
                break
            time.sleep(0.1)
        else:
            sys.exit("the worker did not start")
        return actortrain(app, folder, replicas, seconds,
                          worker=f"127.0.0.1:{m.group(1)}")
    finally:
        worker.terminate()
        worker.wait()


def ddp_worker(rank, world, store, seconds, results):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}",
                            rank=rank, world_size=world)
    train_x, train_y, test_x, test_y = load()
    torch.manual_seed(3)
    model = nn.parallel.DistributedDataParallel(cnn())
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(3)
    order = torch.randperm(train_x.size(0), generator=gen)
    part = BATCH // world
    steps, at = 0, 0
    stop = torch.zeros(1)
    dist.barrier()
    t0 = time.perf_counter()
    while True:
        if at + BATCH > order.size(0):
            order = torch.randperm(train_x.size(0), generator=gen)
            at = 0
        idx = order[at + rank * part:at + (rank + 1) * part]
        at += BATCH
        opt.zero_grad()
        loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
        loss.backward()
        opt.step()
        steps += 1
        if steps % 10 == 0:
            # Rank 0's clock decides, for both.
            stop.fill_(1.0 if rank == 0 and
                       time.perf_counter() - t0 >= seconds else 0.0)
            dist.broadcast(stop, 0)
            if stop.item() > 0:
                break
    elapsed = time.perf_counter() - t0
    if rank == 0:
        model.eval()
        with torch.no_grad():
            pred = model.module(test_x).argmax(1)
        results.put((steps, elapsed, (pred == test_y).float().mean().item()))
    dist.destroy_process_group()


def ddp(folder, seconds):
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    store = os.path.join(folder, "ddp-store")
    procs = [ctx.Process(target=ddp_worker,
                         args=(r, 2, store, seconds, results))
             for r in range(2)]
    for p in procs:
        p.start()
    out = results.get(timeout=seconds * 10 + 120)
    for p in procs:
        p.join()
    return out


def gemm_gflops(threads, n=1024, seconds=3.0):
    """The machine's float32 GEMM rate on `threads` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n ** 3 * count / (time.perf_counter() - t0) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    app = os.path.join(args.build, "apps/actortrain/actortrain")
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        rows["actortrain R=1"] = actortrain(app, folder, 1, args.seconds)
        rows["actortrain R=2"] = actortrain(app, folder, 2, args.seconds)
        rows["actortrain R=2 async"] = actortrain(app, folder, 2, args.seconds,
                                                  "async")
        rows["DDP gloo 2 procs"] = ddp(folder, args.seconds)
        rows["R=2 slow1"] = actortrain(app, folder, 2, args.seconds,
                                       slow="1:2")
        rows["R=2 async slow1"] = actortrain(app, folder, 2, args.seconds,
                                             "async", "1:2")
        rows["R=2, 1 on a worker"] = with_worker(app, folder, 2, args.seconds)
    g1, g2 = gemm_gflops(1), gemm_gflops(2)
    print(f"CNN [32, 64] + 128, Fashion-MNIST, global batch {BATCH}, "
          f"{args.seconds:.0f} s of training each, 1 thread per slot/process")
    print(f"{'system':<20} {'steps':>7} {'seconds':>8} {'steps/s':>8} "
          f"{'test_acc':>9}")
    for name, (steps, secs, acc) in rows.items():
        print(f"{name:<20} {steps:>7} {secs:>8.1f} {steps / secs:>8.2f} "
              f"{acc:>9.4f}")
    rate = {k: v[0] / v[1] for k, v in rows.items()}
    print(f"R=2 / R=1 steps/s: "
          f"{rate['actortrain R=2'] / rate['actortrain R=1']:.2f}x   "
          f"R=2 / DDP: {rate['actortrain R=2'] / rate['DDP gloo 2 procs']:.2f}x"
          f"   async / sync: "
          f"{rate['actortrain R=2 async'] / rate['actortrain R=2']:.2f}x   "
          f"with replica 1 2x slower, async / sync: "
          f"{rate['R=2 async slow1'] / rate['R=2 slow1']:.2f}x   "
          f"replica 1 on a worker / both here: "
          f"{rate['R=2, 1 on a worker'] / rate['actortrain R=2']:.2f}x")
    print(f"machine: float32 GEMM 1024^3 {g1:.1f} GFLOP/s on 1 thread, "
          f"{g2:.1f} on 2 ({g2 / g1:.2f}x)")


if __name__ == "__main__":
    main()
