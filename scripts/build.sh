#!/usr/bin/env bash
# Configures and builds actortrain (Release) into build/: every target, or
# the ones named (scripts/build.sh actortrain_app).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" ${1:+--target "$@"}
