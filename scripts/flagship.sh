#!/usr/bin/env bash
# One command from a fresh Debian machine to results: installs the packages,
# builds, and trains 32 MLPs on Fashion-MNIST, then prints the results table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The app only: the tests, examples and benchmarks are the test command's.
scripts/build.sh actortrain_app
out="runs/fashion-ensemble-$(date +%Y%m%d-%H%M%S)"
rc=0
build/apps/actortrain/actortrain run examples/fashion_ensemble/experiment.toml \
  --output "$out" || rc=$?
if [ -f "$out/results.db" ]; then
  build/apps/actortrain/actortrain results "$out" | tail -n 8
fi
exit $rc
