#!/usr/bin/env bash
# One command from a fresh Debian machine to a full test run: installs the
# packages, builds, runs every test through CTest, then the in-process tests
# again built with AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900)
scripts/test-sanitized.sh
