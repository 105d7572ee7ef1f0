#include "platform/blas_kernels.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <mutex>

#include <fmt/format.h>

namespace actortrain {

namespace {

/// OpenBLAS's own query, found in whatever the process has loaded (LibTorch
/// links the system BLAS; not linking OpenBLAS here keeps other BLASes
/// possible).
template <class F> F* openblas_function(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

bool has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

} // namespace

std::string blas_description() {
  auto* config = openblas_function<char*()>("openblas_get_config");
  return config == nullptr ? std::string{} : std::string{config()};
}

std::string blas_kernels() {
  auto* core = openblas_function<char*()>("openblas_get_corename");
  return core == nullptr ? std::string{} : std::string{core()};
}

std::string blas_warning() {
  auto core = blas_kernels();
  auto is_old = is_openblas_core_before_avx2(core.c_str());
  if (core.empty() || !is_old || !has_avx2())
    return {};
  const char* better = openblas_core_for_this_cpu();
  return fmt::format(
      "warning: OpenBLAS multiplies matrices with its '{}' kernels on a CPU "
      "with {}: training runs several times slower than it could; start the "
      "program with OPENBLAS_CORETYPE={} (programs built in actortrain's "
      "CMake tree or with add_subdirectory select the kernels themselves)",
      core, better != nullptr ? "AVX-512" : "AVX2",
      better != nullptr ? better : "Haswell");
}

void warn_about_blas(const std::function<void(const std::string&)>& on_event) {
  static std::once_flag once;
  std::call_once(once, [&] {
    auto line = blas_warning();
    if (line.empty())
      return;
    if (on_event)
      on_event(line);
    else
      std::fprintf(stderr, "actortrain: %s\n", line.c_str());
  });
}

} // namespace actortrain
