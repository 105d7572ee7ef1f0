#!/bin/sh
# One command on a fresh GPU machine with this checkout, PyTorch with CUDA
# (its LibTorch is the one built against), CMake and a folder of Debian .deb
# files (scripts/fetch-gpu-debs.sh, run where apt works): unpacks the .debs,
# configures and builds against the CUDA LibTorch, runs the device tests
# (GPU halves included), a GPU smoke run beside the same run on the CPU, the
# GPU run continued on the CPU, and the GPU benchmark (benchmarks/run_gpu.py),
# and writes everything to OUT for docs/benchmarks.md. Every step runs even
# when one before it failed, so one try says as much as it can.
#
# usage: scripts/gpu-check.sh DEBS_DIR [OUT=${OUT:-gpu-results}]
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
debs=$(cd "${1:?usage: gpu-check.sh DEBS_DIR [OUT]}" && pwd)
out=${2:-${OUT:-$src/gpu-results}}
mkdir -p "$out"
work=${WORK:-/tmp/actortrain-gpu}
deps=$work/deps
mkdir -p "$deps"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

log "machine"
{ nvidia-smi; python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpus", torch.cuda.device_count())'; nproc; } \
  > "$out/machine.txt" 2>&1
tail -3 "$out/machine.txt" | tee -a "$out/summary.txt"

log "unpacking $(find "$debs" -name "*.deb" | wc -l) .deb files"
for deb in "$debs"/*.deb; do
  if command -v dpkg >/dev/null; then
    dpkg -x "$deb" "$deps"
  else
    (cd "$work" && rm -rf x && mkdir x && cd x && ar x "$deb" &&
      tar -xf data.tar.* -C "$deps")
  fi
done
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"

log "configure (LibTorch from $torch_prefix)"
generator=""
command -v ninja >/dev/null && generator="-G Ninja"
# shellcheck disable=SC2086
cmake -S "$src" -B "$work/build" $generator -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" \
  -DCMAKE_INCLUDE_PATH="$deps/usr/include" \
  -DCMAKE_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu" \
  -DCMAKE_CUDA_COMPILER="$(command -v nvcc || echo nvcc)" \
  -DACTORTRAIN_USE_CCACHE=OFF > "$out/configure.log" 2>&1
echo "configure: exit $?" | tee -a "$out/summary.txt"

log "build"
start=$(date +%s)
cmake --build "$work/build" -j "$(nproc)" > "$out/build.log" 2>&1
echo "build: exit $? in $(( $(date +%s) - start )) s" | tee -a "$out/summary.txt"
grep -E "error:" "$out/build.log" | head -20 >> "$out/summary.txt"

log "device tests (GPU halves run here)"
(cd "$work/build" && ctest -R "devices|stream|BLAS|kernels|fused model|replica|memory|admission|losses|own GPU" \
  --output-on-failure --timeout 300) > "$out/tests.log" 2>&1
echo "tests: exit $?" | tee -a "$out/summary.txt"
tail -4 "$out/tests.log" >> "$out/summary.txt"

log "smoke run: 32 MLPs on synthetic data, on the CPU and on cuda:0"
cat > "$work/smoke.toml" <<'TOML'
name = "gpu-smoke"
[data]
format = "synthetic"
samples = 8192
test_samples = 2048
features = 64
classes = 10
[model]
hidden = [128]
[optimizer]
kind = "adam"
lr = 0.001
[train]
networks = 32
epochs = 3
batch_size = 64
fuse = "off"
[scheduler]
slots = 2
streams_per_gpu = 4
TOML
app=$work/build/apps/actortrain/actortrain
for devices in cpu cuda:0; do
  rm -rf "$work/smoke-$devices"
  start=$(date +%s%N)
  "$app" run "$work/smoke.toml" --output "$work/smoke-$devices" \
    --devices "$devices" --quiet > "$out/smoke-$devices.log" 2>&1
  rc=$?
  end=$(date +%s%N)
  echo "smoke on $devices: exit $rc, $(( (end - start) / 1000000 )) ms" \
    | tee -a "$out/summary.txt"
  "$app" results "$work/smoke-$devices" --format json \
    > "$out/smoke-$devices.json" 2>&1
done
python3 - "$out" <<'PY' >> "$out/summary.txt" 2>&1
import json, sys
out = sys.argv[1]
try:
    cpu = json.load(open(f"{out}/smoke-cpu.json"))["networks"]
    gpu = json.load(open(f"{out}/smoke-cuda:0.json"))["networks"]
    worst = max(abs(a["metrics"]["test_loss"] - b["metrics"]["test_loss"]) /
                max(1e-12, abs(a["metrics"]["test_loss"]))
                for a, b in zip(cpu, gpu))
    print(f"smoke: {len(gpu)} networks; largest relative test-loss "
          f"difference GPU vs CPU {worst:.2e}")
except Exception as e:
    print(f"smoke: no comparison ({e})")
PY
log "the GPU run continued on the CPU (no GPU visible), one epoch more"
rm -rf "$work/smoke-gpu-then-cpu"
cp -r "$work/smoke-cuda:0" "$work/smoke-gpu-then-cpu"
CUDA_VISIBLE_DEVICES="" "$app" continue "$work/smoke-gpu-then-cpu" --epochs 4 \
  --quiet > "$out/continue-on-cpu.log" 2>&1
echo "continue on the CPU: exit $?" | tee -a "$out/summary.txt"
tail -3 "$out/continue-on-cpu.log" >> "$out/summary.txt"

log "GPU benchmark: 1,660 MLPs, actortrain fused and unfused, vmap, a Python loop"
# At most 5 x 55 s, so the whole check fits one 10-minute device call with
# the build (about 4 minutes on 2 cores here, 2026-12-06 dry run without a
# GPU: every step ran and said why the GPU ones failed).
ACTORTRAIN_BENCH_DATA_ROOT="$deps" timeout 300 python3 \
  "$src/benchmarks/run_gpu.py" --build "$work/build" --timeout 55 \
  > "$out/benchmark.md" 2> "$out/benchmark.log"
echo "benchmark: exit $?" | tee -a "$out/summary.txt"
cat "$out/benchmark.md" >> "$out/summary.txt"

log "done: $out"
