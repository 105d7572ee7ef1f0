#!/bin/sh
# The same networks as a built-in model and as a TorchScript module saved by
# Python, side by side in one invocation: what the scripted path costs.
# Fashion-MNIST, 32 MLPs 784-32-10 on 2 slots, 1 epoch of batch 64, unfused
# (TorchScript models never fuse) plus the built-in model fused for scale.
#   benchmarks/run_torchscript.sh [BUILD]
# Prints one line per variant: wall seconds of training (the app's summary),
# and the ratio to the built-in unfused run.
set -eu
build=${1:-build}
app="$build/apps/actortrain/actortrain"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
/usr/bin/python3 - "$dir" <<'PY'
import sys, torch
from torch import nn
mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
torch.jit.script(mlp).save(sys.argv[1] + "/mlp.pt")
PY
variant() { # name, [model] lines, fuse
  cat > "$dir/$1.toml" <<TOML
name = "$1"
[data]
format = "idx"
train = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
train_labels = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
test = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
test_labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"
partition = "bootstrap"
[model]
$2
[train]
networks = 32
epochs = 1
batch_size = 64
eval_every = 0
fuse = "$3"
[scheduler]
slots = 2
TOML
  "$app" run "$dir/$1.toml" --output "$dir/$1" 2>&1 |
    sed -n 's/.* in \([0-9.]*\) s$/\1/p' | tail -1
}
builtin=$(variant builtin 'hidden = [32]' off)
script=$(variant script 'kind = "torchscript"
path = "mlp.pt"' off)
fused=$(variant fused 'hidden = [32]' auto)
for pair in "builtin_unfused $builtin" "torchscript $script" "builtin_fused $fused"; do
  set -- $pair
  awk -v n="$1" -v t="$2" -v b="$builtin" \
    'BEGIN { printf "%s train_s=%s ratio_to_builtin_unfused=%.3f\n", n, t, t / b }'
done
