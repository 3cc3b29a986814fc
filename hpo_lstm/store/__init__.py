"""A study's storage: every read and write of an Optuna storage hpo-lstm makes.

- :mod:`~hpo_lstm.store.record`: opening a storage, and :class:`StudyRecord`, what the storage
  holds of one study, loaded once, for a run, a comparison, a report and a forecast alike.
- :mod:`~hpo_lstm.store.recording`: :class:`Recorder`, the one writer of a study (a trial per
  evaluation, the baselines, the final result), under the study's lease.
- :mod:`~hpo_lstm.store.lease`: one driver per study (a lease with a heartbeat).
- :mod:`~hpo_lstm.store.model_store`: weights as trial artifacts in the study's database, the
  model card, the model folder.
- :mod:`~hpo_lstm.store.manifest`: a comparison's compare.json, and opening a storage a result
  folder names (checked, read-only) before anything is read from it.
- ``_sql``: hpo-lstm's own tables beside Optuna's.

Storage URLs (passwords masked in every message and file, ``HPO_LSTM_STORAGE``) are text rules
that the config checks before any storage is opened: :mod:`hpo_lstm._urls`, a leaf every layer
uses (``mask_url`` and ``mask_secrets`` are re-exported here).

Public names are imported on first use (PEP 562): ``import hpo_lstm.store`` loads no optuna.
"""

from __future__ import annotations

_LAZY = {
    "StudyRecord": "hpo_lstm.store.record",
    "open_storage": "hpo_lstm.store.record",
    "counts_as_evaluation": "hpo_lstm.store.record",
    "is_complete": "hpo_lstm.store.record",
    "Recorder": "hpo_lstm.store.recording",
    "StudyLease": "hpo_lstm.store.lease",
    "MANIFEST": "hpo_lstm.store.manifest",
    "open_recorded": "hpo_lstm.store.manifest",
    "read_manifest": "hpo_lstm.store.manifest",
    "mask_url": "hpo_lstm._urls",
    "mask_secrets": "hpo_lstm._urls",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):  # PEP 562
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hpo_lstm.store' has no attribute {name!r}")
