#!/bin/sh
# Downloads (here, with apt-get download; nothing is installed) the Debian
# packages a GPU machine lacks for scripts/gpu-check.sh: CAF, fmt, toml++,
# doctest, nlohmann-json, SQLite, zlib and OpenSSL headers and libraries,
# and python3-sklearn for the digits data of the GPU benchmark.
#
# usage: scripts/fetch-gpu-debs.sh [DIR=gpu-debs]
set -eu
dir=${1:-gpu-debs}
mkdir -p "$dir"
cd "$dir"
apt-get download libcaf-dev libcaf-core0.17 libcaf-io0.17 libcaf-openssl0.17 \
  libfmt-dev libfmt9 libtomlplusplus-dev libtomlplusplus3 doctest-dev \
  nlohmann-json3-dev libsqlite3-dev libsqlite3-0 zlib1g-dev libssl-dev libssl3 \
  python3-sklearn
ls -1 "$PWD"
