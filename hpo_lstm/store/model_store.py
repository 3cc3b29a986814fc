"""The tuned model as an artifact of its study: weights and what forecasting with them needs.

A trained candidate's weights travel back from whichever process or Dask worker trained it
(only when it may beat the study's best so far). The driver attaches the weights of every
candidate that improved the study's best to its trial, through Optuna's artifact API
(``optuna.artifacts.upload_artifact``; optuna-dashboard lists them with the trial). The final
model is the best trial's own weights: nothing is retrained to make it, so its validation RMSE
is the recorded one on any CPU, GPU or worker.

Where the bytes live: :class:`DatabaseArtifactStore`, a table ``hpo_lstm_artifacts`` in the
study's own database. Optuna's stock artifact stores write to a file system folder, S3 or GCS;
a folder on the driver's disk is out of reach of the other machines that share a PostgreSQL
study, and the cloud stores need services this tool cannot assume. A table beside Optuna's own
reaches every machine that reaches the storage. (Written here because Optuna ships no
database-backed store; the protocol is three methods.)

A run's folder holds the same model as files, ``model/weights.safetensors`` and
``model/model.json`` (see :func:`model_card`). Weights are safetensors: plain tensors and a JSON
header, loaded without unpickling anything.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from hpo_lstm._errors import ConfigError, StorageError, first_line
from hpo_lstm._urls import mask_url

__all__ = [
    "FORMAT",
    "META_FILE",
    "WEIGHTS_FILE",
    "DatabaseArtifactStore",
    "ModelFileError",
    "attach_study_weights",
    "attach_weights",
    "read_weights",
    "shorter_than_a_day",
    "time_step",
    "trial_weights",
    "weights_bytes",
    "weights_digest",
]

FORMAT = "hpo-lstm-model/1"
WEIGHTS_FILE = "weights.safetensors"
META_FILE = "model.json"
_TABLE = "hpo_lstm_artifacts"


class ModelFileError(ConfigError):
    """A saved model that is missing, corrupt or of another format."""


# Weights <-> bytes ----------------------------------------------------------------------------


def weights_bytes(weights: Mapping[str, np.ndarray]) -> bytes:
    """A state dict of numpy arrays as safetensors bytes."""
    from safetensors.numpy import save

    return save({name: np.ascontiguousarray(array) for name, array in weights.items()}, metadata={"format": FORMAT})


def weights_digest(weights: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of a state dict: every tensor's name, dtype, shape and bytes, by name. A model
    card holds the digest of its weights (``weights_sha256``), checked when it is loaded."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(weights):
        array = np.ascontiguousarray(weights[name])
        digest.update(f"{name}|{array.dtype.str}|{list(array.shape)}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def read_weights(data: bytes, *, source: str) -> dict[str, np.ndarray]:
    """safetensors bytes -> a state dict of numpy arrays; a one-line error if they are not."""
    from safetensors.numpy import load

    try:
        weights = load(data)
    except Exception as exc:  # safetensors raises its own error types for every kind of damage
        raise ModelFileError(
            f"{source} is not a readable weights file ({first_line(exc) or type(exc).__name__})."
        ) from None
    if not weights or not all(np.all(np.isfinite(w)) for w in weights.values()):
        raise ModelFileError(f"{source} holds no weights, or non-finite ones.")
    return weights


# The study's database as an artifact store ---------------------------------------------------


class DatabaseArtifactStore:
    """An ``optuna.artifacts`` store keeping each artifact as one row of ``hpo_lstm_artifacts``
    in the database of an Optuna RDB storage (SQLite, PostgreSQL, ...).

    ``storage`` is an Optuna RDB storage (``optuna.storages.RDBStorage(url)``). Pass the store
    wherever Optuna takes an artifact store, e.g.
    ``optuna_dashboard.run_server(storage, artifact_store=DatabaseArtifactStore(storage))`` to
    download models from the dashboard.
    """

    def __init__(self, storage: Any) -> None:
        import sqlalchemy as sa

        # optuna.load_study wraps an RDBStorage in a cache that hides its engine.
        backend = getattr(storage, "_backend", storage)
        if not hasattr(backend, "engine"):
            raise StorageError(
                f"Saved models need a database storage (SQLite, PostgreSQL, ...); got {type(storage).__name__}."
            )
        self._engine = backend.engine
        self._table = sa.Table(
            _TABLE,
            sa.MetaData(),
            sa.Column("artifact_id", sa.String(64), primary_key=True),
            sa.Column("content", sa.LargeBinary, nullable=False),
        )
        self._created = False

    def _ensure_table(self) -> None:
        if not self._created:
            from hpo_lstm.store._sql import create_table

            create_table(self._table, self._engine)
            self._created = True

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self._ensure_table()
        with self._engine.begin() as connection:
            connection.execute(self._table.insert().values(artifact_id=artifact_id, content=content_body.read()))

    def open_reader(self, artifact_id: str) -> BinaryIO:
        from optuna.artifacts.exceptions import ArtifactNotFound

        self._ensure_table()
        with self._engine.connect() as connection:
            row = connection.execute(self._table.select().where(self._table.c.artifact_id == artifact_id)).first()
        if row is None:
            raise ArtifactNotFound(f"No artifact {artifact_id!r} in {_TABLE}.")
        return io.BytesIO(row.content)

    def remove(self, artifact_id: str) -> None:
        self._ensure_table()
        with self._engine.begin() as connection:
            connection.execute(self._table.delete().where(self._table.c.artifact_id == artifact_id))


def attach_weights(storage: Any, trial: Any, weights: Mapping[str, np.ndarray]) -> str:
    """Attach ``weights`` to the unfinished FrozenTrial ``trial`` as ``weights.safetensors``."""
    return _upload(storage, trial, WEIGHTS_FILE, weights)


def attach_study_weights(storage: Any, study: Any, number: int, weights: Mapping[str, np.ndarray]) -> str:
    """Attach the weights of finished trial ``number`` to ``study`` (Optuna takes artifacts for
    unfinished trials only) as ``trial-<number>.weights.safetensors``."""
    return _upload(storage, study, f"trial-{number}.{WEIGHTS_FILE}", weights)


def _upload(storage: Any, owner: Any, filename: str, weights: Mapping[str, np.ndarray]) -> str:
    from optuna.artifacts import upload_artifact

    with tempfile.TemporaryDirectory(prefix="hpo-lstm-") as folder:
        path = Path(folder) / filename
        path.write_bytes(weights_bytes(weights))
        return upload_artifact(
            artifact_store=DatabaseArtifactStore(storage),
            file_path=str(path),
            study_or_trial=owner,
            storage=storage,
            mimetype="application/octet-stream",
        )


def trial_weights(storage: Any, trial: Any, study: Any = None) -> dict[str, np.ndarray] | None:
    """The weights attached to ``trial`` (or, for a trial finished before they were, to
    ``study`` under its number), or None when it has none (or they never arrived)."""
    from optuna.artifacts import get_all_artifact_meta
    from optuna.artifacts.exceptions import ArtifactNotFound

    metas = [m for m in get_all_artifact_meta(trial, storage=storage) if m.filename == WEIGHTS_FILE]
    if study is not None:
        name = f"trial-{trial.number}.{WEIGHTS_FILE}"
        metas += [m for m in get_all_artifact_meta(study, storage=storage) if m.filename == name]
    store = DatabaseArtifactStore(storage)
    for meta in reversed(metas):  # the last attached first
        try:
            with store.open_reader(meta.artifact_id) as reader:
                data = reader.read()
        except ArtifactNotFound:  # the driver died between noting the artifact and writing it
            continue
        return read_weights(data, source=f"the weights of trial {trial.number}")
    return None


def merge_member_weights(
    best: Mapping[str, np.ndarray], members: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """One state dict for a final forecast of several networks: the best network's tensors under
    their own names (so a single-network model reads as before), each other member's under
    ``<member>/<name>`` (``network_2/lstm.weight_ih_l0``)."""
    merged = {name: array for name, array in best.items()}
    for member, weights in members.items():
        merged.update({f"{member}/{name}": array for name, array in weights.items()})
    return merged


def split_member_weights(weights: Mapping[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """:func:`merge_member_weights` undone: member name -> its state dict ("network_1": the best)."""
    out: dict[str, dict[str, np.ndarray]] = {"network_1": {}}
    for name, array in weights.items():
        member, slash, rest = name.partition("/")
        if slash:
            out.setdefault(member, {})[rest] = array
        else:
            out["network_1"][name] = array
    return out


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def write_model_folder(folder: Path, card: Mapping[str, Any], weights: Mapping[str, np.ndarray]) -> None:
    """``folder/model.json`` and ``folder/weights.safetensors`` (weights first: a model.json
    present means the model is complete)."""
    from hpo_lstm._files import write_bytes, write_text
    from hpo_lstm._json import dumps

    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / WEIGHTS_FILE, weights_bytes(weights))  # whole files, links replaced (hpo_lstm._files)
    write_text(folder / META_FILE, dumps(dict(card), indent=2) + "\n")


def read_model_folder(folder: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The model card and weights saved in ``folder`` (a run's ``model/``)."""
    meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        raise ModelFileError(
            f"{str(folder)!r} holds no saved model ({META_FILE} and {WEIGHTS_FILE}); a study saves one when it ends."
        )
    try:
        card = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{str(meta_path)!r} is not readable JSON ({first_line(exc)}).") from None
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        raise ModelFileError(f"{str(meta_path)!r} is not an hpo-lstm model card (format {FORMAT!r}).")
    return card, read_weights(weights_path.read_bytes(), source=repr(str(weights_path)))


def shorter_than_a_day(step: Any) -> bool:
    """Whether a time step (a pandas offset or Timedelta) is a fixed span under a day: hours and
    minutes continue in absolute time; days, business days, weeks, months and longer on the
    clock of the data's zone."""
    import pandas as pd

    try:
        return pd.Timedelta(step) < pd.Timedelta(days=1)
    except (TypeError, ValueError):  # calendar offsets (months, business days) have no fixed span
        return False


def time_step(times: np.ndarray | None, zone: str | None = None) -> dict[str, Any]:
    """How the series' time advances: a pandas frequency (``"W-SAT"``, ``"h"``) when regular,
    else the median step in seconds; rows without time stamps advance by 1. ``weekdays_only``:
    daily stamps, two weeks or more, none on a Saturday or Sunday (business days).

    ``times`` are UTC (as a Series holds them); with the ``zone`` they were written in, steps of
    a day or longer are read on the clock of that zone, where a day is a day across daylight
    saving time, and the weekdays are the zone's."""
    if times is None or not len(times) or np.asarray(times).dtype.kind != "M":
        return {"freq": None, "step_seconds": None, "last": int(len(times) - 1) if times is not None else None}
    import pandas as pd

    from hpo_lstm.data import wall_times

    index = pd.DatetimeIndex(times)
    wall = wall_times(index, zone)

    def steps_of(stamps: Any) -> tuple[str | None, float | None]:
        tail = stamps[-min(len(stamps), 200) :]
        freq = pd.infer_freq(tail) if len(tail) >= 3 else None
        return freq, float(np.median(np.diff(tail.as_unit("ns").asi8))) / 1e9 if len(tail) >= 2 else None

    freq, step = steps_of(index)
    if zone and step is not None and not shorter_than_a_day(pd.Timedelta(seconds=step)):  # (hours stay absolute)
        freq, step = steps_of(wall)
    weekdays = len(wall) >= 10 and bool((wall.dayofweek < 5).all())
    return {"freq": freq, "step_seconds": step, "last": index[-1].isoformat(), "weekdays_only": weekdays}


def model_card(
    *,
    config: Any,
    dataset: Any,
    params: Mapping[str, Any],
    trial: int,
    weights_source: str,
    val_rmse: float,
    intervals: Mapping[str, float],
    versions: Mapping[str, str],
    final_forecast: Mapping[str, Any] | None = None,
    members: list[Mapping[str, Any]] = (),
    statistical: Mapping[str, Mapping[str, Any]] | None = None,
    weights_sha256: str | None = None,
) -> dict[str, Any]:
    """Everything :func:`hpo_lstm.load_forecaster` needs besides the weights (``model.json``):
    the model and its params, the columns, the windowing and scaling rules fitted on the
    training rows, the series' time step and last rows (to forecast past the data), the
    recorded validation RMSE and the conformal interval half-widths per level. A model reading
    calendar features names them (``calendar``); transform sdiff records its lag (``season``).

    A final forecast of more than the best network (``final_forecast``: its kind, members and
    weights) lists every member: the other networks (``members``: name, trial, params; their
    weights are stored beside the best's, :func:`merge_member_weights`) and the statistical
    models' fitted states (``statistical``, :func:`hpo_lstm.baselines.forecast_from_state`),
    which filter the whole target series from its first row, kept as ``target_history``."""
    from hpo_lstm.data import input_lag
    from hpo_lstm.models import registry

    # The longest lookback of the networks in the final forecast: each reads the end of that window.
    included = (
        set((final_forecast or {}).get("members") or ())
        if (final_forecast or {}).get("kind", "best") != "best"
        else set()
    )
    lookback = max([int(params["lookback"])] + [int(m["params"]["lookback"]) for m in members if m["name"] in included])
    # A diff window needs one row before its first input, an sdiff window a season of them.
    rows = lookback + max(1, input_lag(dataset.transform, dataset.season))
    times = dataset.point_times
    history_times = (
        [str(t) for t in np.datetime_as_string(times[-rows:], unit="s")]
        if times is not None
        else list(range(len(dataset.values) - rows, len(dataset.values)))
    )
    return {
        "format": FORMAT,
        **dict(versions),
        "study_name": config.study_name,
        "storage": mask_url(config.storage_url),  # never a password in a file (hpo_lstm._urls)
        "trial": trial,
        "weights": weights_source,
        "model": config.model,
        # The model's own parameters (channels, heads, ...) are named even when not searched.
        "params": registry[config.model].complete(params),
        "data": config.data_name,
        "time_column": config.time_column,
        "time_zone": getattr(dataset, "time_zone", None),  # forecasts are written in it (stamps held in UTC)
        "target": dataset.target,
        "features": list(dataset.feature_names),
        "lookback": lookback,
        "horizon": dataset.horizon,
        "transform": dataset.transform,
        "calendar": list(dataset.calendar),  # inputs after the features (hpo_lstm.data.calendar_columns)
        "season": dataset.season if dataset.transform == "sdiff" else None,
        "input_mean": [float(v) for v in dataset.input_mean],
        "input_scale": [float(v) for v in dataset.input_scale],
        # One per forecast step 1..horizon (a direct multi-step model scales each step's change on its own).
        "target_mean": [float(v) for v in np.atleast_1d(dataset.target_mean)],
        "target_scale": [float(v) for v in np.atleast_1d(dataset.target_scale)],
        "time": time_step(times, getattr(dataset, "time_zone", None))
        if times is not None
        else {"freq": None, "step_seconds": None, "last": len(dataset.values) - 1},
        "history": {"time": history_times, "values": [[float(v) for v in row] for row in dataset.values[-rows:]]},
        "val_rmse": val_rmse,
        "intervals": dict(intervals),
        **({"weights_sha256": weights_sha256} if weights_sha256 else {}),
        **_final_forecast_card(final_forecast, members, statistical, registry[config.model], dataset),
    }


def _final_forecast_card(
    final_forecast: Mapping[str, Any] | None,
    members: list[Mapping[str, Any]],
    statistical: Mapping[str, Mapping[str, Any]] | None,
    spec: Any,
    dataset: Any,
) -> dict[str, Any]:
    if not final_forecast or final_forecast.get("kind") == "best":
        return {}
    networks = {m["name"]: m for m in members}
    listed = []
    for name, weight in zip(final_forecast["members"], final_forecast["weights"]):
        entry: dict[str, Any] = {"name": name, "weight": float(weight)}
        if name in networks:
            params = spec.complete(networks[name]["params"])
            entry.update(trial=networks[name]["trial"], params=params, lookback=int(params["lookback"]))
        elif name != "network_1":
            entry["state"] = dict((statistical or {})[name])
        listed.append(entry)
    card: dict[str, Any] = {
        "final_forecast": {"kind": final_forecast["kind"], "rule": final_forecast.get("rule"), "members": listed}
    }
    if any("state" in entry for entry in listed):
        card["target_history"] = [float(v) for v in dataset.level]
    return card
