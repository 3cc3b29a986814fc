"""What the CPU is, read without importing numpy or torch; and the fit processes' BLAS pin."""

from __future__ import annotations

import functools
import os

__all__ = ["PINNED_OPENBLAS_CORE", "cpu_flags", "pin_openblas"]

# OpenBLAS's kernels for Intel Haswell: AVX2 and FMA, which every x86-64 CPU since 2013 (Intel)
# and 2017 (AMD Zen) has. docs/baselines.md: which kernel OpenBLAS takes decides which model
# AutoARIMA chooses on close calls (CO2: ARIMA(2,1,1)(2,1,0)[52] with the Haswell and Zen
# kernels, ARIMA(2,1,2)(1,1,0)[52] with the SkylakeX and Sandybridge ones).
PINNED_OPENBLAS_CORE = "Haswell"


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags as Linux lists them (/proc/cpuinfo); None where unreadable."""
    try:
        with open("/proc/cpuinfo") as handle:
            return frozenset(next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), []))
    except OSError:
        return None


def pin_openblas() -> str | None:
    """Make OpenBLAS, when it loads after this call, take its Haswell kernels on any x86-64 CPU
    that has AVX2 and FMA, so that the statistical baselines choose the same models on Intel and
    AMD CPUs (the kernels round differently). Returns the core type set, or None where nothing
    was set: another CPU, flags not readable (not Linux), or ``OPENBLAS_CORETYPE`` already set
    by the user (then theirs holds). Takes effect only in a process that has not loaded numpy:
    the baselines' fork server imports this module first (:mod:`hpo_lstm._fit_env`)."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return None
    flags = cpu_flags() or frozenset()
    if not {"avx2", "fma"} <= flags:
        return None
    os.environ["OPENBLAS_CORETYPE"] = PINNED_OPENBLAS_CORE
    return PINNED_OPENBLAS_CORE
