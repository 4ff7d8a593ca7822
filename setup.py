"""Build the optional compiled statistics kernel (msdbg/_statskernel.c); everything else is in pyproject.toml.

Without a working C compiler the build skips the extension (optional=True) and msdbg uses its NumPy statistics.
"""

from setuptools import Extension, setup

# -O3 and OpenMP SIMD pragmas (-fopenmp-simd: no OpenMP runtime) let the compiler vectorise the reductions; no
# -march: the kernel carries an AVX2 copy of its loops, and an AVX2 + F16C loop for 2-byte floats, both chosen at
# load time, so a build runs on any x86-64 CPU (and elsewhere with the portable loops).
KERNEL = Extension("msdbg._statskernel", ["msdbg/_statskernel.c"], optional=True,
                   extra_compile_args=["-O3", "-fopenmp-simd", "-std=c11"])

setup(ext_modules=[KERNEL])
