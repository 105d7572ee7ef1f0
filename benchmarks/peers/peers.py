#!/usr/bin/python3
"""The Python peers of the benchmark suite: a sequential PyTorch loop, a
multiprocessing.Pool with one process per core, and functorch.vmap over
stacked parameters. Trains one workload of workloads.json with one system and
prints one JSON line: network-steps, seconds, peak memory.

Usage: peers.py {sequential|pool|vmap} WORKLOAD [--threads N]
                [--device cpu|cuda:N] [--networks N]
--device trains the sequential loop and vmap on a GPU (the data on it once);
--networks trains only the first N networks (a slow peer's rate, in bounded
time).
Needs Debian's python3-torch (the same LibTorch as actortrain) and, for W1,
python3-sklearn's digits data.
"""

import argparse
import gzip
import json
import multiprocessing
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
# Debian's packages' files; under ACTORTRAIN_BENCH_DATA_ROOT where the
# packages were unpacked rather than installed (scripts/gpu-check.sh).
ROOT = os.environ.get("ACTORTRAIN_BENCH_DATA_ROOT", "")
DIGITS = ROOT + "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"
FASHION = ROOT + "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(name):
    """Training and test sets as tensors, like actortrain loads them."""
    if name == "digits":
        table = np.loadtxt(DIGITS, delimiter=",", dtype=np.float32)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(table))
        n_test = int(round(0.2 * len(table)))
        test, train = table[order[:n_test]], table[order[n_test:]]
        mean, std = train[:, :-1].mean(0), train[:, :-1].std(0) + 1e-8
        fx = lambda t: torch.from_numpy((t[:, :-1] - mean) / std)
        fy = lambda t: torch.from_numpy(t[:, -1].astype(np.int64))
        return fx(train), fy(train), fx(test), fy(test), 10
    images = lambda f: torch.from_numpy(read_idx(f"{FASHION}/{f}").astype(np.float32) / 255).unsqueeze(1)
    labels = lambda f: torch.from_numpy(read_idx(f"{FASHION}/{f}").astype(np.int64))
    return (images("train-images-idx3-ubyte.gz"), labels("train-labels-idx1-ubyte.gz"),
            images("t10k-images-idx3-ubyte.gz"), labels("t10k-labels-idx1-ubyte.gz"), 10)


def build(arch, sample_shape, classes):
    """The same layers as actortrain's built-in MLP / CNN."""
    layers = []
    features = int(np.prod(sample_shape))
    if arch["kind"] == "cnn":
        c, h, w = sample_shape
        for out in arch["channels"]:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        features = c * h * w
    layers.append(nn.Flatten())
    for width in arch["hidden"]:
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    layers.append(nn.Linear(features, classes))
    return nn.Sequential(*layers)


def networks(workload, n_train):
    """(arch, seed, shard indices) of every network."""
    result = []
    seed = 0
    for arch in workload["archs"]:
        n = arch["networks"]
        for i in range(n):
            if workload["partition"] == "contiguous":
                shard = torch.arange(i * n_train // n, (i + 1) * n_train // n)
            elif workload["partition"] == "bootstrap":
                # n_train samples drawn with replacement, per network.
                gen = torch.Generator().manual_seed(1000 + seed)
                shard = torch.randint(0, n_train, (n_train,), generator=gen)
            else:
                shard = torch.arange(n_train)
            result.append((arch, seed, shard))
            seed += 1
    return result


def steps_per_epoch(shard, batch):
    return (len(shard) + batch - 1) // batch


def train_one(net, data, workload):
    """Trains one network alone; returns (steps, test accuracy)."""
    arch, seed, shard = net
    x, y, tx, ty, classes = data
    torch.manual_seed(seed)
    model = build(arch, x.shape[1:], classes).to(x.device)
    shard = shard.to(x.device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    batch = workload["batch_size"]
    steps = 0
    for _ in range(workload["epochs"]):
        order = shard[torch.randperm(len(shard), generator=gen)]
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            opt.zero_grad()
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            steps += 1
    with torch.no_grad():
        correct = sum((model(tx[s:s + 4096]).argmax(1) == ty[s:s + 4096]).sum().item()
                      for s in range(0, len(ty), 4096))
        accuracy = correct / len(ty)
    return steps, accuracy


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- multiprocessing.Pool: one process per core, each with the data ---------

_pool_state = {}


def _pool_init(name, workload):
    torch.set_num_threads(1)
    _pool_state["data"] = load(name)
    _pool_state["workload"] = workload


def _pool_train(net):
    steps, accuracy = train_one(net, _pool_state["data"], _pool_state["workload"])
    return steps, accuracy, os.getpid(), peak_mb()


def run_pool(workload, threads, data):
    nets = networks(workload, len(data[1]))
    ctx = multiprocessing.get_context("fork")
    t0 = time.perf_counter()
    with ctx.Pool(threads, initializer=_pool_init,
                  initargs=(workload["data"], workload)) as pool:
        results = pool.map(_pool_train, nets, chunksize=1)
    seconds = time.perf_counter() - t0
    workers = {}
    for _, _, pid, mb in results:
        workers[pid] = max(workers.get(pid, 0), mb)
    return sum(r[0] for r in results), seconds, peak_mb() + sum(workers.values())


# -- functorch.vmap over stacked parameters ---------------------------------

def run_vmap(workload, data, limit=None):
    from functorch import combine_state_for_ensemble, grad, vmap
    x, y, tx, ty, classes = data
    nets = networks(workload, len(y))[:limit]
    batch = workload["batch_size"]
    total_steps = 0
    t0 = time.perf_counter()
    # One stacked model per architecture (vmap needs one shape).
    start = 0
    for arch in workload["archs"]:
        group = nets[start:start + arch["networks"]]
        start += arch["networks"]
        if not group:
            continue
        models = []
        for _, seed, _ in group:
            torch.manual_seed(seed)
            models.append(build(arch, x.shape[1:], classes).to(x.device))
        fmodel, params, buffers = combine_state_for_ensemble(models)
        params = [p.detach().requires_grad_() for p in params]
        opt = torch.optim.Adam(params, lr=1e-3)

        def loss_fn(p, b, xb, yb):
            return F.cross_entropy(fmodel(p, b, xb), yb)

        grads_of = vmap(grad(loss_fn), in_dims=(0, 0, 0, 0))
        gens = [torch.Generator().manual_seed(seed) for _, seed, _ in group]
        shards = [shard for _, _, shard in group]
        n = len(shards[0])
        for _ in range(workload["epochs"]):
            orders = torch.stack([s[torch.randperm(n, generator=g)] for s, g in zip(shards, gens)]).to(x.device)
            for s in range(0, n, batch):
                idx = orders[:, s:s + batch]
                g = grads_of(params, buffers, x[idx], y[idx])
                for p, gp in zip(params, g):
                    p.grad = gp
                opt.step()
                total_steps += len(group)
        with torch.no_grad():
            # In chunks, as the others evaluate: all at once would need
            # tens of GiB for the CNNs.
            correct = 0
            for s in range(0, len(ty), 1000):
                logits = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, tx[s:s + 1000])
                correct = correct + (logits.argmax(2) == ty[s:s + 1000]).float().sum(1)
    return total_steps, time.perf_counter() - t0, peak_mb()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("system", choices=["sequential", "pool", "vmap"])
    ap.add_argument("workload")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--networks", type=int, default=None)
    args = ap.parse_args()
    with open(os.path.join(HERE, "workloads.json")) as f:
        workload = json.load(f)[args.workload]
    data = load(workload["data"])
    if args.device != "cpu":
        data = tuple(t.to(args.device) if torch.is_tensor(t) else t for t in data)
    if args.system == "pool":
        steps, seconds, mb = run_pool(workload, args.threads, data)
    else:
        torch.set_num_threads(args.threads)
        if args.system == "vmap":
            steps, seconds, mb = run_vmap(workload, data, args.networks)
        else:
            t0 = time.perf_counter()
            steps = sum(train_one(net, data, workload)[0]
                        for net in networks(workload, len(data[1]))[:args.networks])
            if args.device != "cpu":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            mb = peak_mb()
    print(json.dumps({"system": f"python-{args.system}", "workload": args.workload,
                      "device": args.device, "network_steps": steps,
                      "seconds": seconds, "peak_mb": mb}))


if __name__ == "__main__":
    main()
