#pragma once

#include <dlfcn.h>
#include <strings.h>

#include <functional>
#include <string>

namespace actortrain {

/// An OpenBLAS function found in whatever the process has loaded, or null:
/// LibTorch links the system BLAS; not linking OpenBLAS here keeps other
/// BLASes possible. Works before any constructor has run.
template <class F> F* openblas_function(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

/// The OpenBLAS kernel family to ask for where OpenBLAS's own detection
/// fell back to one from before AVX2 (OpenBLAS 0.3.21, Debian 12, does on
/// CPUs newer than it, Sapphire Rapids among them: its SSE3 "Prescott"
/// kernels, about 5x slower matrix products): "SkylakeX" on a CPU with
/// AVX-512 (F, CD, BW, DQ, VL), "Haswell" with AVX2 and FMA, null on older
/// CPUs. Safe before any constructor has run (it asks the CPU directly).
inline const char* openblas_core_for_this_cpu() noexcept {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return "Haswell";
#endif
  return nullptr;
}

/// Whether `core` names one of OpenBLAS's kernel families from before AVX2
/// (its "Prescott" fallback among them).
inline bool is_openblas_core_before_avx2(const char* core) noexcept {
  for (const char* old :
       {"unknown", "Katmai", "Coppermine", "Northwood", "Prescott", "Banias",
        "Atom", "Core2", "Penryn", "Dunnington", "Nehalem", "Opteron",
        "Opteron_SSE3", "Barcelona", "Sandybridge"})
    if (strcasecmp(core, old) == 0)
      return true;
  return false;
}

/// What this process multiplies matrices with, e.g. "OpenBLAS 0.3.21
/// DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64"; empty when the BLAS
/// LibTorch uses is not OpenBLAS. Results depend on it: the same network
/// trained with other kernels rounds differently.
std::string blas_description();

/// The OpenBLAS kernel family in use ("SkylakeX", "Haswell", "Prescott",
/// ...), or empty when the BLAS is not OpenBLAS.
std::string blas_kernels();

/// A warning naming the fix when matrix products run on kernels far below
/// what this CPU can do (OpenBLAS's SSE3 fallback on a CPU with AVX2 or
/// AVX-512); empty otherwise.
std::string blas_warning();

/// Passes blas_warning() to `on_event` (to stderr when it is empty), once
/// per process: a run and a worker start with it.
void warn_about_blas(const std::function<void(const std::string&)>& on_event);

} // namespace actortrain
