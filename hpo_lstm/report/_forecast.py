"""What ``hpo-lstm forecast`` writes: forecast.csv and forecast.png, both or neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo_lstm._files import check_real_folder, ensure_writable, replacing, write_csv
from hpo_lstm.report import _plots

__all__ = ["FORECAST_FILES", "write_forecast_files"]

FORECAST_FILES = ("forecast.csv", "forecast.png")


def write_forecast_files(
    folder: Path,
    frame: Any,
    history: Any,
    *,
    title: str,
    unit_label: str,
    horizon: int,
    inside: str | Path | None = None,
) -> None:
    """Write ``frame`` (:meth:`hpo_lstm.Forecaster.forecast`) as forecast.csv and its plot after
    ``history`` (the series' last points) as forecast.png into ``folder``.

    ``inside``: the result folder ``folder`` lies in by default; a ``folder`` that is a symbolic
    link out of it is refused, not followed. Both files or neither: each is written whole beside
    its place, and both are renamed into place only once both are written (a full disk left a
    new forecast.csv beside the old png)."""
    folder = Path(folder)
    if inside is not None:
        check_real_folder(folder, inside)
    ensure_writable(folder)
    with replacing(folder / "forecast.csv") as csv_path, replacing(folder / "forecast.png") as png_path:
        write_csv(csv_path, frame)
        _plots.plot_forecast(history, frame, png_path, title=title, unit_label=unit_label, horizon=horizon)
