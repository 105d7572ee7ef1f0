#!/usr/bin/env bash
# Builds the library, the app and the tests with AddressSanitizer and
# UndefinedBehaviorSanitizer (-DACTORTRAIN_SANITIZE=ON) into build-asan/ and
# runs the in-process tests under them: the readers and their fuzzers,
# experiments, learners, the scheduler and its policies, layout, fusion and
# whole runs in one process (what CI runs, ~1 minute). With --all: every
# test through CTest (about 7 minutes on 2 cores; the multi-process tests
# run 3-10x slower, near their own time bounds), except the outside-project
# one, which cannot link a sanitized library without the sanitizer runtime.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DACTORTRAIN_SANITIZE=ON \
  -DACTORTRAIN_BUILD_BENCHMARKS=OFF -DACTORTRAIN_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build-asan -j "$jobs" --target actortrain_tests
# Leaks: LibTorch and CAF keep process-lifetime singletons.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1
if [[ "${1:-}" == "--all" ]]; then
  cd build-asan
  exec ctest --output-on-failure -j "$jobs" --timeout 900 \
    -E '^find_package_consumer$'
fi
# TorchScript: its learner swaps LibTorch's global generator and runs the
# interpreter (the example is left to the plain run: 32 CNNs). Sessions: every
# run goes through one.
exec build-asan/tests/actortrain_tests \
  -sf='*test_data.cpp,*test_experiment.cpp,*test_fuzz.cpp,*test_learner.cpp,*test_scheduler.cpp,*test_policies.cpp,*test_layout.cpp,*test_fusion.cpp,*test_run.cpp,*test_torchscript.cpp,*test_session.cpp,*test_replicas.cpp,*test_devices.cpp,*test_memory.cpp,*test_step_losses.cpp,*test_wire.cpp' \
  -tce='the TorchScript example*'
