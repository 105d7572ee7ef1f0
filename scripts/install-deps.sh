#!/usr/bin/env bash
# Installs the Debian packages actortrain needs to build, test and run its
# examples. Idempotent: does nothing when everything is already installed.
set -euo pipefail

packages=(
  g++ cmake make pkg-config ccache
  libcaf-dev            # CAF 0.17.6: actors and networking
  libtorch-dev          # LibTorch 1.13.1 (CPU)
  libopenblas0-openmp   # fast BLAS for LibTorch (the reference BLAS is ~8x slower)
  libfmt-dev doctest-dev libtomlplusplus-dev libsqlite3-dev zlib1g-dev
  nlohmann-json3-dev
  dataset-fashion-mnist # the flagship example's data
  python3-torch         # tests that Python PyTorch loads saved weights
  python3-sklearn       # the iris / digits / wine CSV files of the CSV example
  openssl               # the TLS tests make their certificates with it
  libjs-chart.js        # the charts that HTML reports inline
  chromium              # the report tests render reports in headless Chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
