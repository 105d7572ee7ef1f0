#!/bin/sh
# One run of N tiny networks (synthetic data: 256 samples, 8 features, 3
# classes; MLP 8-8-3; 1 epoch of batch 32, 8 steps a network) on 2 slots:
# wall time, maximum resident set, files and bytes the run folder holds.
#   benchmarks/run_scale.sh N FUSE LAYOUT [BUILD]
#   FUSE: auto or off; LAYOUT: database or files
set -eu
n=$1 fuse=$2 layout=$3 build=${4:-build}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat > "$dir/scale.toml" <<TOML
name = "scale"
[data]
format = "synthetic"
samples = 256
test_samples = 64
features = 8
classes = 3
[model]
hidden = [8]
[train]
networks = $n
epochs = 1
batch_size = 32
fuse = "$fuse"
[output]
layout = "$layout"
TOML
/usr/bin/time -f "%e %M" -o "$dir/time" "$build/apps/actortrain/actortrain" \
  run "$dir/scale.toml" --output "$dir/out" --quiet --slots 2 >/dev/null
read -r wall rss_kb < "$dir/time"
files=$(find "$dir/out" -type f | wc -l)
# Bytes in the files, and the disk they take (whole blocks, one per file).
bytes=$(du -sb "$dir/out" | cut -f1)
disk_kb=$(du -sk "$dir/out" | cut -f1)
echo "networks=$n fuse=$fuse layout=$layout wall_s=$wall max_rss_mb=$((rss_kb / 1024)) files=$files bytes_mb=$((bytes / 1048576)) disk_mb=$((disk_kb / 1024))"
