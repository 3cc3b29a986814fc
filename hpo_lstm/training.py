"""One fitness evaluation: train a forecaster on train, return its best validation RMSE.

No DataLoader: the windows become tensors once per process and device, and mini-batches are
index slices of them. Validation is one full batch under ``torch.inference_mode`` and the
loss is read back once per epoch, so a GPU is never synchronised per batch.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo_lstm._cpu import cpu_flags
from hpo_lstm.data import Dataset
from hpo_lstm.models import build_model

__all__ = [
    "DIVERGENCE_LIMIT",
    "PLATEAU_FACTOR",
    "PRECISIONS",
    "TrainResult",
    "TrainSettings",
    "forward_windows",
    "model_from_weights",
    "predict",
    "resolve_device",
    "resolve_precision",
    "train_candidate",
]

# A candidate diverged when its validation loss is non-finite, or its validation RMSE is more
# than this many times that of always forecasting the training mean (the standardised
# target's RMSE is ~1 for that forecast). Gradient clipping keeps a huge learning rate from
# producing NaN: the network saturates instead, and this is how that shows.
DIVERGENCE_LIMIT = 10.0

# lr_schedule "plateau": the learning rate is multiplied by this when the validation RMSE has
# not improved for `plateau_patience(patience)` epochs, so that it may still improve before
# early stopping ends the training (docs/models.md has the measurement).
PLATEAU_FACTOR = 0.5

# Arithmetic of the training steps: "bf16" runs each training step's forward pass and loss
# under torch.autocast(dtype=bfloat16); weights, Adam's state and every validation, test and
# forecast pass stay float32. "auto": bf16 on a CPU that computes it natively (AVX-512 BF16 or
# AMX), else fp32. Measured (docs/speed.md, benchmarks/precision.py): 1.34x faster steps on such
# a CPU at the same validation RMSE, but 0.77x on an H200 (cuDNN's small LSTMs gain nothing).
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How every candidate is trained (the same for all candidates of a study)."""

    max_epochs: int = 30
    patience: int = 5
    batch_size: int = 64
    dropout: float = 0.0
    lr_schedule: str = "constant"  # or "plateau" (ReduceLROnPlateau on the validation RMSE)
    grad_clip: float = 1.0
    device: str = "cpu"
    # One of PRECISIONS; "auto" is resolved where the training runs (a Dask worker on a CPU
    # without native bf16 trains in fp32, as its float32 digits differ from the driver's anyway).
    precision: str = "fp32"

    @classmethod
    def from_config(cls, config: Any, device: str) -> TrainSettings:
        """The training settings of a :class:`~hpo_lstm.StudyConfig`, on ``device``; a
        precision this device cannot train in is refused here (ConfigError)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name not in ("device", "grad_clip")]
        resolve_precision(config.precision, device)
        return cls(**{name: getattr(config, name) for name in names}, device=device)

    def candidate(self, params: Mapping[str, Any], dataset: Dataset) -> dict[str, Any]:
        """Searched params completed with the study's fixed values."""
        full = {"dropout": self.dropout, "batch_size": self.batch_size, "lookback": dataset.lookback}
        full.update(params)
        return full


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one training run. ``val_rmse`` is in the series' own units."""

    val_rmse: float
    epochs: int
    best_epoch: int
    seconds: float
    status: str  # "ok", "pruned" (val_rmse is the best reached) or "diverged" (val_rmse is NaN)
    val_curve: tuple[float, ...]
    started_at: float = 0.0  # wall clock (seconds since the epoch) when the training started
    final_learning_rate: float = math.nan  # Adam's rate at the end (lower than the searched one after plateaus)
    # The best epoch's weights (name -> float32 array on the CPU) when asked for; see train_candidate.
    weights: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when a GPU is present, else "cpu"; other names pass through, once
    checked: a device this torch cannot use is refused as one line, before anything trains."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        from hpo_lstm._errors import ConfigError

        if not torch.cuda.is_available():
            why = "was built without CUDA" if torch.version.cuda is None else "sees no CUDA device"
            raise ConfigError(
                f"Device {device!r} is not available: this torch ({torch.__version__}) {why}; use `device` cpu or auto."
            )
        index = device.partition(":")[2]
        if index and int(index) >= torch.cuda.device_count():
            raise ConfigError(
                f"Device {device!r} is not available: torch sees {torch.cuda.device_count()} CUDA device(s), "
                f"cuda:0 to cuda:{torch.cuda.device_count() - 1}."
            )
    elif device == "mps" and not torch.backends.mps.is_available():
        from hpo_lstm._errors import ConfigError

        raise ConfigError(
            f"Device 'mps' is not available to this torch ({torch.__version__}); use `device` cpu or auto."
        )
    return device


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively: its flags list AVX-512 BF16 or AMX BF16, and
    oneDNN can train an LSTM in bf16 on it (:func:`bf16_trains`). Elsewhere bf16 is emulated
    and slower than float32."""
    flags = cpu_flags() or frozenset()
    return bool(flags & {"avx512_bf16", "amx_bf16"}) and bf16_trains("cpu")


@functools.cache
def bf16_trains(device: str) -> bool:
    """Whether a tiny LSTM trains a step under bf16 autocast on ``device``: oneDNN refuses
    (no LSTM primitive) where its instruction set is capped below AVX-512 (``DNNL_MAX_CPU_ISA``)."""
    try:
        with torch.random.fork_rng(devices=[]):
            lstm = nn.LSTM(2, 4, batch_first=True).to(device)
            with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
                out = lstm(torch.zeros(1, 3, 2, device=device))[0].float().sum()
            out.backward()
    except RuntimeError:
        return False
    return True


def resolve_precision(precision: str, device: str) -> str:
    """ "auto" -> "bf16" on a CPU that computes it natively (:func:`cpu_native_bf16`), else
    "fp32" (on CUDA bf16 was slower, see PRECISIONS); "fp32" and "bf16" pass through, except
    that bf16 is refused on a device whose autocast has no bfloat16 (mps) or where oneDNN has
    no bf16 LSTM."""
    from hpo_lstm._errors import ConfigError

    if precision not in PRECISIONS:
        raise ConfigError(f"Unknown `precision` {precision!r}; choose from {', '.join(PRECISIONS)}.")
    if precision == "auto":
        return "bf16" if device == "cpu" and cpu_native_bf16() else "fp32"
    if precision == "bf16" and not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"`precision` bf16 trains on cpu or cuda; got `device` {device!r}: use `precision` fp32.")
    if precision == "bf16" and not bf16_trains(device):
        raise ConfigError(
            f"`precision` bf16: torch cannot train an LSTM in bfloat16 on this {device} (oneDNN has no "
            "bf16 LSTM for its instruction set); use `precision` fp32 or auto."
        )
    return precision


_GLOBAL_RNG = threading.Lock()

_TENSORS: weakref.WeakKeyDictionary[Dataset, dict[str, tuple[torch.Tensor, torch.Tensor]]] = weakref.WeakKeyDictionary()


def _tensors(dataset: Dataset, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset's windows as tensors on ``device``, built once per process."""
    per_device = _TENSORS.setdefault(dataset, {})
    if device not in per_device:
        per_device[device] = (
            torch.from_numpy(dataset.x).to(device),
            torch.from_numpy(dataset.y).to(device),
        )
    return per_device[device]


def make_adam(model: nn.Module, learning_rate: float, device: str) -> torch.optim.Optimizer:
    """Adam, fused into one kernel per step on CPU and CUDA.

    Measured with one thread (benchmarks/train_step.py): the fused step made a whole training
    step of a small LSTM ~30% faster than the default multi-tensor Adam (h16: 2.0 -> 1.4 ms).
    """
    fused = device.split(":")[0] in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=fused or None)


def plateau_patience(patience: int) -> int:
    """Epochs without a new best validation RMSE that the "plateau" schedule waits before it
    lowers the rate: about half of early stopping's ``patience``, so that a lowered rate gets
    epochs to find a new best before early stopping ends the training (5 -> reduce after the
    2nd epoch without one, then after 2 more; stop after the 5th)."""
    return max(0, patience // 2 - 1)


def make_lr_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings) -> Any:
    """The ``settings.lr_schedule`` as a scheduler stepped with each epoch's validation RMSE, or
    None for "constant". torch's ``ReduceLROnPlateau`` with ``threshold=0``: any new best
    counts as progress, the same rule early stopping uses."""
    if settings.lr_schedule == "constant":
        return None
    if settings.lr_schedule != "plateau":
        from hpo_lstm._errors import ConfigError

        raise ConfigError(f"Unknown lr_schedule {settings.lr_schedule!r}; choose from constant, plateau.")
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=PLATEAU_FACTOR, patience=plateau_patience(settings.patience), threshold=0.0
    )


def train_candidate(
    model_name: str,
    params: Mapping[str, Any],
    dataset: Dataset,
    settings: TrainSettings,
    *,
    seed: int,
    keep_model: bool = False,
    prune_above: Sequence[float] | None = None,
    weights_below: float | None = None,
) -> tuple[TrainResult, nn.Module | None]:
    """Train one candidate with early stopping; deterministic on CPU for a given ``seed``.

    ``prune_above[e - 1]`` is the best-so-far validation RMSE a candidate must beat after
    epoch ``e`` to go on (see :mod:`hpo_lstm.pruning`); otherwise it stops as "pruned".
    Returns the result and, with ``keep_model``, the model holding its best-epoch weights.
    With ``weights_below``, a result whose validation RMSE is below it carries its best
    epoch's weights (``TrainResult.weights``): the study's final model, should it stay the best.
    """
    keep_model = keep_model or weights_below is not None
    full = settings.candidate(params, dataset)
    device = resolve_device(settings.device)
    lookback, batch_size = int(full["lookback"]), int(full["batch_size"])
    x_all, y_all = _tensors(dataset, device)
    x_all = x_all[:, -lookback:, :]  # a searched lookback uses the last steps of the longest window
    train, val = dataset.split("train"), dataset.split("val")
    x_train, y_train, x_val, y_val = x_all[train], y_all[train], x_all[val], y_all[val]
    n_train = x_train.shape[0]

    multi = dataset.horizon > 1
    target_scale = float(dataset.target_scale[0])
    scale2 = np.asarray(dataset.target_scale, dtype=float) ** 2
    started, started_at = time.perf_counter(), time.time()
    rng_devices = [torch.cuda.current_device()] if device.startswith("cuda") else []
    # fork_rng: weight init and dropout draw from torch's global generator; seed it only here,
    # one training at a time per process (a comparison's cells may retrain a final model in
    # threads of one driver; in a worker process the lock is never contended).
    with _GLOBAL_RNG, torch.random.fork_rng(devices=rng_devices):
        torch.manual_seed(seed)
        model = build_model(model_name, full, n_features=dataset.n_features, horizon=dataset.horizon).to(device)
        optimizer = make_adam(model, float(full["learning_rate"]), device)
        scheduler = make_lr_scheduler(optimizer, settings)
        loss_fn = nn.MSELoss()
        shuffle = torch.Generator().manual_seed(seed)
        bf16 = resolve_precision(settings.precision, device) == "bf16"
        autocast_device = device.split(":")[0]

        best, best_epoch, best_state, since_best = math.inf, 0, None, 0
        curve: list[float] = []
        status = "ok"
        for epoch in range(1, settings.max_epochs + 1):
            model.train()
            order = torch.randperm(n_train, generator=shuffle).to(device)
            for start in range(0, n_train, batch_size):
                idx = order[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(autocast_device, dtype=torch.bfloat16, enabled=bf16):
                    loss = loss_fn(model(x_train[idx]).float(), y_train[idx])
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
                optimizer.step()
            model.eval()
            with torch.inference_mode():
                step_mse = ((model(x_val) - y_val) ** 2).mean(dim=0) if multi else None
                val_mse = (step_mse.mean() if multi else loss_fn(model(x_val), y_val)).item()  # one sync per epoch
            scaled_rmse = math.sqrt(val_mse) if math.isfinite(val_mse) else math.inf
            if multi and math.isfinite(val_mse):  # RMSE in the series' units over every step
                curve.append(math.sqrt(float((step_mse.cpu().numpy() * scale2).mean())))
            else:
                curve.append(scaled_rmse * target_scale)
            if scaled_rmse > DIVERGENCE_LIMIT:
                status = "diverged"
                break
            val_rmse = curve[-1]
            if val_rmse < best:
                best, best_epoch, since_best = val_rmse, epoch, 0
                if keep_model:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                since_best += 1
                if since_best >= settings.patience:
                    break
            if prune_above is not None and epoch <= len(prune_above) and best > prune_above[epoch - 1]:
                status = "pruned"
                break
            if scheduler is not None:
                scheduler.step(val_rmse)
        if keep_model and best_state is not None:
            model.load_state_dict(best_state)
    result = TrainResult(
        val_rmse=math.nan if status == "diverged" else best,
        epochs=len(curve),
        best_epoch=best_epoch,
        seconds=time.perf_counter() - started,
        status=status,
        val_curve=tuple(curve),
        started_at=started_at,
        final_learning_rate=float(optimizer.param_groups[0]["lr"]),
        weights=(
            {name: tensor.detach().cpu().numpy().copy() for name, tensor in best_state.items()}
            if weights_below is not None and best_state is not None and status != "diverged" and best < weights_below
            else None
        ),
    )
    return result, (model if keep_model else None)


def model_from_weights(
    model_name: str,
    params: Mapping[str, Any],
    weights: Mapping[str, np.ndarray],
    *,
    n_features: int,
    device: str,
    horizon: int = 1,
) -> nn.Module:
    """The forecaster ``params`` describe, holding ``weights`` (as a training returned them)."""
    model = build_model(model_name, params, n_features=n_features, horizon=horizon)
    try:
        model.load_state_dict({name: torch.from_numpy(np.asarray(array)) for name, array in weights.items()})
    except RuntimeError as exc:  # missing, unexpected or misshapen tensors
        from hpo_lstm.store.model_store import ModelFileError

        raise ModelFileError(
            f"The saved weights do not fit a {model_name} with {dict(params)}: {str(exc).splitlines()[0]}"
        ) from None
    return model.to(resolve_device(device)).eval()


def forward_windows(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Scaled outputs (n, horizon) of an eval-mode ``model`` for windows ``x`` (n, lookback, F),
    one window per forward pass.

    A matrix product may round one row differently when other rows come with it: which kernel
    a BLAS library takes, and how it splits the rows, depends on the batch's size (MKL's
    AVX-512 kernels on Intel CPUs do, its kernels on AMD CPUs did not, by 1 part in 1e8). A
    window therefore goes through alone, so its prediction has the same bits whichever windows
    are predicted with it: the study's test predictions, :meth:`Forecaster.predict` over a
    longer frame and a forecast's first step all agree on any CPU (docs/reliability.md)."""
    with torch.inference_mode():
        if not len(x):
            return np.zeros((0, 0), dtype=np.float32)
        outputs = [model(x[i : i + 1]).reshape(1, -1) for i in range(len(x))]
        return torch.cat(outputs).float().cpu().numpy()


def predict(model: nn.Module, dataset: Dataset, split: str, *, lookback: int | None = None) -> np.ndarray:
    """Forecast levels (series units) for every window of ``split``: (n_windows, horizon)."""
    device = next(model.parameters()).device
    x_all, _ = _tensors(dataset, str(device))
    x = x_all[dataset.split(split), -(lookback or dataset.lookback) :, :]
    model.eval()
    return dataset.to_level(forward_windows(model, x), split)
