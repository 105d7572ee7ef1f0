#!/bin/sh
# Compiles every translation unit against LibTorch 2.x without a second
# machine: Debian trixie's libtorch-dev 2.6 (CPU), fetched as .deb files with
# a sources list and package lists of its own (this machine stays on
# bookworm), unpacked with dpkg -x, and configured as a second build. Its
# libraries want trixie's C library, so nothing is linked; compiler errors
# are what this checks (the GPU machine's CUDA LibTorch 2.x links for real:
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
# shellcheck disable=SC2086  # the options are words
version=$(apt-cache $apt_opts show libtorch-dev | sed -n 's/^Version: \(2\..*\)/\1/p' | head -n 1)
echo "LibTorch from trixie: $version"
# shellcheck disable=SC2086
(cd "$work/debs" && apt-get $apt_opts download "libtorch-dev=$version" \
  "libtorch$(echo "$version" | cut -d. -f1-2)=$version")
rm -rf "$work/root"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
torch_dir=$(dirname "$(find "$work/root" -name TorchConfig.cmake | head -n 1)")
# Linking is replaced by touching the target, so that every target's
# objects compile (a failed link would stop the targets that depend on it).
touch_target='<CMAKE_COMMAND> -E touch <TARGET>'
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DTorch_DIR="$torch_dir" -DACTORTRAIN_USE_CCACHE=OFF \
  -DCMAKE_CXX_LINK_EXECUTABLE="$touch_target" \
  -DCMAKE_CXX_CREATE_SHARED_LIBRARY="$touch_target" \
  -DCMAKE_CXX_CREATE_SHARED_MODULE="$touch_target" >/dev/null
cmake --build "$work/build" -j "$(nproc)" -- -k > "$work/build.log" 2>&1 || true
if grep -E '^[^ ]+\.(cpp|hpp|h|cxx):[0-9]+:[0-9]+: error:' "$work/build.log"; then
  echo "compile errors against LibTorch $version (full log: $work/build.log)"
  exit 1
fi
echo "every translation unit compiles against LibTorch $version"
