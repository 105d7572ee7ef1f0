#!/bin/sh
# Compiles the CUDA side of the device seam (src/platform/*_cuda.cpp, built
# only where the Torch package has CUDA) without a GPU machine: against
# Debian's LibTorch 1.13 here and trixie's LibTorch 2.6 (unpacked by
# scripts/check-torch2.sh into the same WORK_DIR), with the CUDA toolkit's
# headers from trixie's non-free nvidia-cuda-dev and libcu++-dev (.deb files
# fetched with a sources list of their own, unpacked with dpkg-deb: about
# 1 GB to download, 20 MB kept). CPU packages lack the one header CMake
# generates for a CUDA build (c10/cuda/impl/cuda_cmake_macros.h): a stand-in
# defines what it would. -fsyntax-only: types, overloads and templates are
# checked; nothing is linked.
#
# usage: scripts/check-cuda-seam.sh [WORK_DIR=/tmp/actortrain-torch2]
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/actortrain-torch2}
nf=$work/cuda-headers
mkdir -p "$nf/lists/partial" "$nf/debs" "$nf/root" "$nf/shim/c10/cuda/impl"
printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main contrib non-free\n' \
  > "$nf/sources.list"
apt_opts="-oDir::Etc::SourceList=$nf/sources.list -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists=$nf/lists -oDebug::NoLocking=1"
if [ ! -f "$nf/root/usr/include/cuda_runtime_api.h" ]; then
  # shellcheck disable=SC2086  # the options are words
  apt-get $apt_opts update -qq
  # shellcheck disable=SC2086
  (cd "$nf/debs" && apt-get $apt_opts download nvidia-cuda-dev libcu++-dev)
  for deb in "$nf"/debs/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$nf/root" --wildcards './usr/include/*'
  done
  rm -f "$nf"/debs/*.deb
fi
printf '#pragma once\n#define C10_CUDA_BUILD_SHARED_LIBS\n' \
  > "$nf/shim/c10/cuda/impl/cuda_cmake_macros.h"
status=0
check() { # NAME TORCH_INCLUDE (empty: the system's)
  for f in "$src"/libactortrain/src/platform/*_cuda.cpp; do
    # shellcheck disable=SC2086  # the torch include options are words
    if g++ -std=c++17 -fsyntax-only -Wall -Wextra -Werror \
      -I "$src/libactortrain/src" -I "$src/libactortrain/include" \
      ${2:+-isystem "$2"} -isystem "${2:-/usr/include}/torch/csrc/api/include" \
      -isystem "$nf/root/usr/include" -isystem "$nf/shim" "$f"; then
      echo "$(basename "$f") compiles against LibTorch $1 with CUDA headers"
    else
      echo "$(basename "$f") does NOT compile against LibTorch $1"
      status=1
    fi
  done
}
check 1.13 ""
if [ -d "$work/root/usr/include/torch" ]; then
  check 2.6 "$work/root/usr/include"
else
  echo "LibTorch 2.6 not unpacked in $work: run scripts/check-torch2.sh $work first"
  status=1
fi
exit $status
