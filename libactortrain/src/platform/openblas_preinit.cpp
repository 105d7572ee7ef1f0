// Linked into every executable that links actortrain in its CMake tree:
// where OpenBLAS falls back to kernels from before AVX2 on a CPU that has
// AVX2 or AVX-512 (0.3.21, Debian 12, on Sapphire Rapids: its SSE3
// "Prescott" kernels, about 5x slower matrix products), it gets the CPU's
// own (openblas_core_for_this_cpu) instead.
//
// OpenBLAS picks its kernels once, in its constructor, from
// OPENBLAS_CORETYPE or its own detection; an executable's preinit functions
// are the only code that runs before it. Setting the variable there is not
// enough (the C library starts its environment afresh when it initialises),
// so this runs OpenBLAS's own kernel selection early: detect; on a fallback,
// forget it and select again with OPENBLAS_CORETYPE set. OpenBLAS's
// constructor then keeps that selection. A value the user set stands, and a
// BLAS that is not OpenBLAS is left alone.

#include <cstdlib>
#include <cstring>

#include "platform/blas_kernels.hpp"

namespace {

/// Whether `env` (the process's initial environment) sets `name`. The C
/// library's getenv cannot tell yet: its environment starts with its own
/// initialisation.
bool is_set(char** env, const char* name) {
  auto n = std::strlen(name);
  for (; env != nullptr && *env != nullptr; ++env)
    if (std::strncmp(*env, name, n) == 0 && (*env)[n] == '=')
      return true;
  return false;
}

void choose_openblas_kernels(int, char**, char** env) {
  if (is_set(env, "OPENBLAS_CORETYPE"))
    return;
  const char* better = actortrain::openblas_core_for_this_cpu();
  if (better == nullptr)
    return;
  auto* select = actortrain::openblas_function<void()>("gotoblas_dynamic_init");
  auto* forget = actortrain::openblas_function<void()>("gotoblas_dynamic_quit");
  auto* selected =
      actortrain::openblas_function<char*()>("openblas_get_corename");
  if (select == nullptr || forget == nullptr || selected == nullptr)
    return;
  select();
  if (!actortrain::is_openblas_core_before_avx2(selected()))
    return;
  forget();
  setenv("OPENBLAS_CORETYPE", better, 1);
  select();
  unsetenv("OPENBLAS_CORETYPE");
}

} // namespace

// The loader calls what this array holds, before any constructor.
__attribute__((section(".preinit_array"),
               used)) void (*const actortrain_openblas_preinit)(int, char**,
                                                                char**) =
    &choose_openblas_kernels;
