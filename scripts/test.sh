#!/usr/bin/env bash
# One command from a fresh Debian machine to a full test run: installs the
# packages, builds, and runs every test through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 900
