// The BLAS a run multiplies matrices with: kernels made for the CPU (not
// OpenBLAS 0.3.21's SSE3 fallback on AVX-512 CPUs), a warning naming the
// fix when they are not, and the BLAS on record in the run's provenance.

#include <cstdlib>
#include <string>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "actortrain/error.hpp"
#include "actortrain/run.hpp"
#include "actortrain/store.hpp"
#include "platform/blas_kernels.hpp"
#include "test_support.hpp"

using namespace actortrain;
using namespace actortrain::test;

namespace {

constexpr const char* blas_toml = R"(name = "blas"
[data]
format = "synthetic"
samples = 256
test_samples = 64
features = 10
classes = 3
[model]
hidden = [16]
[train]
networks = 2
epochs = 1
batch_size = 32
[scheduler]
slots = 2
)";

std::string recorded_blas(const std::string& out) {
  auto store = results_store::open(out + "/" + results_store::file_name);
  REQUIRE(static_cast<bool>(store));
  auto prov = (*store)->provenance();
  REQUIRE(static_cast<bool>(prov));
  return prov->blas;
}

/// Whether OpenBLAS runs this process and the CPU has kernels worth
/// warning about (AVX2 and FMA).
bool openblas_on_avx2() {
  __builtin_cpu_init();
  return !blas_kernels().empty() && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("fma");
}

} // namespace

TEST_CASE("this program multiplies matrices with kernels made for its CPU") {
  if (!openblas_on_avx2() || std::getenv("OPENBLAS_CORETYPE") != nullptr) {
    MESSAGE("not OpenBLAS on an AVX2 CPU, or OPENBLAS_CORETYPE set by hand");
    return;
  }
  CHECK_MESSAGE(!is_openblas_core_before_avx2(blas_kernels().c_str()),
                blas_kernels());
  CHECK(blas_warning().empty());
  CHECK(contains(blas_description(), blas_kernels()));
  // Only the preinit function's own selection; nothing leaks into the
  // environment of the processes this one starts.
  CHECK(std::getenv("OPENBLAS_CORETYPE") == nullptr);
}

TEST_CASE("a run records its BLAS and warns when the kernels are far below "
          "the CPU") {
  if (!openblas_on_avx2() || std::getenv("OPENBLAS_CORETYPE") != nullptr) {
    MESSAGE("not OpenBLAS on an AVX2 CPU, or OPENBLAS_CORETYPE set by hand");
    return;
  }
  temp_dir dir;
  write_text(dir / "exp.toml", blas_toml);
  auto fast = run_app(fmt::format("run {} --output {} --quiet",
                                  dir / "exp.toml", dir / "fast"));
  REQUIRE_MESSAGE(fast.exit_code == 0, fast.output);
  CHECK_MESSAGE(!contains(fast.output, "OPENBLAS_CORETYPE"), fast.output);
  // The app selects the kernels as this test program does.
  CHECK(recorded_blas(dir / "fast") == blas_description());

  // Forced onto the SSE3 kernels: it trains, says why it is slow and what
  // to do, and the store says what ran.
  auto slow = run_process(fmt::format(
      "OPENBLAS_CORETYPE=Prescott timeout 600 {} run {} --output {} --quiet",
      app(), dir / "exp.toml", dir / "slow"));
  REQUIRE_MESSAGE(slow.exit_code == 0, slow.output);
  CHECK_MESSAGE(contains(slow.output, "with its 'Prescott' kernels"),
                slow.output);
  CHECK(contains(slow.output, "OPENBLAS_CORETYPE="));
  auto slow_blas = recorded_blas(dir / "slow");
  CHECK(contains(slow_blas, "Prescott"));

  // Continued with the CPU's kernels: the rest rounds differently, so the
  // continuation says so and the store keeps both.
  auto more =
      run_app(fmt::format("continue {} --epochs 2 --quiet", dir / "slow"));
  REQUIRE_MESSAGE(more.exit_code == 0, more.output);
  CHECK_MESSAGE(contains(more.output, "resumes with"), more.output);
  CHECK(recorded_blas(dir / "slow") ==
        slow_blas + "; then " + blas_description());
  // Continued again with the same kernels: nothing to say.
  auto again =
      run_app(fmt::format("continue {} --epochs 3 --quiet", dir / "slow"));
  REQUIRE_MESSAGE(again.exit_code == 0, again.output);
  CHECK(!contains(again.output, "resumes with"));
}

TEST_CASE("a worker that multiplies with other kernels is named in a warning") {
  if (!openblas_on_avx2() || std::getenv("OPENBLAS_CORETYPE") != nullptr) {
    MESSAGE("not OpenBLAS on an AVX2 CPU, or OPENBLAS_CORETYPE set by hand");
    return;
  }
  temp_dir dir;
  auto port = free_port();
  background_process worker{
      fmt::format(
          "env OPENBLAS_CORETYPE=Prescott {} worker --port {} --slots 1", app(),
          port),
      dir / "worker.log"};
  REQUIRE_MESSAGE(worker.wait_for("listening on", 60), worker.output());
  CHECK(contains(worker.output(), "with its 'Prescott' kernels"));
  auto exp = tiny_experiment(2, 1);
  auto address = fmt::format("127.0.0.1:{}", port);
  exp.cluster.workers = {address};
  std::string events;
  run_options opts;
  opts.output_dir = dir / "out";
  opts.on_event = [&](const std::string& line) {
    events += line + "\n";
  };
  auto result = run(exp, opts);
  REQUIRE_MESSAGE(static_cast<bool>(result), to_string_pretty(result.error()));
  CHECK_MESSAGE(contains(events, fmt::format("warning: worker {} multiplies "
                                             "matrices with",
                                             address)),
                events);
  CHECK(contains(events, "Prescott"));
}
