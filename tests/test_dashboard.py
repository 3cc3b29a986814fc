"""optuna-dashboard reads what hpo-lstm records: its real WSGI app, queried in-process."""

from __future__ import annotations

import io
import json
from pathlib import Path
from wsgiref.util import setup_testing_defaults

from conftest import TINY_SPACE, write_study

from hpo_lstm.cli import main


def _get(app, path: str) -> dict:
    environ: dict = {}
    setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, QUERY_STRING="", REQUEST_METHOD="GET", **{"wsgi.input": io.BytesIO()})
    status: list[str] = []
    body = b"".join(app(environ, lambda s, headers, exc_info=None: status.append(s)))
    assert status[0].startswith("200"), status
    return json.loads(body)


def test_dashboard_shows_every_trial_with_its_attributes(tmp_path: Path):
    import optuna_dashboard

    study = write_study(tmp_path / "s.toml", 'name = "dash"\nbatch_size = 256\n' + TINY_SPACE)
    args = [
        "run",
        str(study),
        "--data",
        "sine",
        "--lookback",
        "8",
        "--max-epochs",
        "2",
        "--optimizer",
        "random",
        "--budget",
        "4",
        "--pop-size",
        "2",
        "--workers",
        "1",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 0
    app = optuna_dashboard.wsgi(f"sqlite:///{tmp_path / 'hpo-lstm.db'}")
    summaries = _get(app, "/api/studies")["study_summaries"]
    assert [s["study_name"] for s in summaries] == ["dash"]
    detail = _get(app, f"/api/studies/{summaries[0]['study_id']}")
    assert len(detail["trials"]) == 4
    trial = detail["trials"][0]
    assert trial["state"] == "Complete" and len(trial["values"]) == 1
    assert {p["name"] for p in trial["params"]} == {"learning_rate", "hidden_size", "n_layers"}
    assert {"optimizer", "model", "generation", "epochs", "train_seconds", "seed"} <= {
        a["key"] for a in trial["user_attrs"]
    }
    assert detail["has_intermediate_values"]  # learning curves
