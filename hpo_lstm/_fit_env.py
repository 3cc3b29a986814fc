"""Imported first by the statistical baselines' fork server, before numpy: pins OpenBLAS's
kernels (:func:`hpo_lstm._cpu.pin_openblas`) for every fit the server forks."""

from hpo_lstm._cpu import pin_openblas

pin_openblas()
