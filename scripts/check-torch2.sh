#!/bin/sh
# Compiles every translation unit against LibTorch 2.x without a second
# machine: Debian trixie's libtorch-dev 2.6 (CPU), fetched as .deb files with
# a sources list and package lists of its own (this machine stays on
# bookworm), unpacked with dpkg -x, and configured as a second build. Its
# libraries want trixie's C library, so linking fails; compiler errors are
# what this checks (the GPU machine's CUDA LibTorch 2.x links for real:
# scripts/gpu-check.sh).
#
# usage: scripts/check-torch2.sh [WORK_DIR=/tmp/actortrain-torch2]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/actortrain-torch2}
mkdir -p "$work/lists/partial" "$work/debs"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main\n' \
  > "$work/sources.list"
apt_opts="-oDir::Etc::SourceList=$work/sources.list -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists=$work/lists -oDebug::NoLocking=1"
# shellcheck disable=SC2086
apt-get $apt_opts update -qq
version=$(apt-cache $apt_opts show libtorch-dev | sed -n 's/^Version: \(2\..*\)/\1/p' | head -n 1)
echo "LibTorch from trixie: $version"
(cd "$work/debs" && apt-get $apt_opts download "libtorch-dev=$version" \
  "libtorch$(echo "$version" | cut -d. -f1-2)=$version")
rm -rf "$work/root"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
torch_dir=$(dirname "$(find "$work/root" -name TorchConfig.cmake | head -n 1)")
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DTorch_DIR="$torch_dir" -DACTORTRAIN_USE_CCACHE=OFF >/dev/null
# Compile everything (-k: on past the link failures), then look only for
# the compiler's errors.
cmake --build "$work/build" -j "$(nproc)" -- -k > "$work/build.log" 2>&1 || true
if grep -E '^[^ ]+\.(cpp|hpp|h|cxx):[0-9]+:[0-9]+: error:' "$work/build.log"; then
  echo "compile errors against LibTorch $version (full log: $work/build.log)"
  exit 1
fi
echo "every translation unit compiles against LibTorch $version"
