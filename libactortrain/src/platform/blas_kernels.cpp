#include "platform/blas_kernels.hpp"

#include <cstdio>
#include <mutex>

#include <fmt/format.h>

namespace actortrain {

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
  const char* better = openblas_core_for_this_cpu();
  if (core.empty() || better == nullptr ||
      !is_openblas_core_before_avx2(core.c_str()))
    return {};
  return fmt::format(
      "warning: OpenBLAS multiplies matrices with its '{}' kernels on a CPU "
      "with {}: training runs several times slower than it could; start the "
      "program with OPENBLAS_CORETYPE={} (programs built in actortrain's "
      "CMake tree or with add_subdirectory select the kernels themselves)",
      core, std::string{better} == "SkylakeX" ? "AVX-512" : "AVX2", better);
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
