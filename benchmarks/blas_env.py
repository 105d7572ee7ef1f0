"""The OpenBLAS kernels actortrain's programs select for this CPU
(libactortrain/src/platform/openblas_preinit.cpp), for the Python peers of a
benchmark: import this before torch or numpy, or pass kernels_env() to a
child process, so that every system multiplies with the same kernels."""

import os


def chosen_kernels():
    """"SkylakeX" on a CPU with AVX-512 (F, CD, BW, DQ, VL), else None
    (OpenBLAS's own choice stands); a value the user set wins."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return os.environ["OPENBLAS_CORETYPE"]
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    wanted = ("avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl")
    return "SkylakeX" if all(x in flags for x in wanted) else None


def kernels_env():
    env = dict(os.environ)
    kernels = chosen_kernels()
    if kernels:
        env["OPENBLAS_CORETYPE"] = kernels
    return env


# Imported before torch: this process's own OpenBLAS starts with them too.
if chosen_kernels():
    os.environ["OPENBLAS_CORETYPE"] = chosen_kernels()
