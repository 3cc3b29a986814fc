"""Code of your own, named ``module:Class``: the form of such a name and its import, one rule
for a model (``--model``, a model card) and an optimizer (``--optimizer``)."""

from __future__ import annotations

import importlib
import re
from typing import Any

from hpo_lstm._errors import ConfigError

__all__ = ["USER_CODE_NAME", "import_user_code"]

USER_CODE_NAME = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def import_user_code(name: str, kind: str, example: str) -> Any:
    """The object ``module:Class`` names (imported: running the module's code), or a one-line
    ConfigError that names ``kind`` ("model", "optimizer") and gives ``example``."""
    if not USER_CODE_NAME.fullmatch(name):
        article = "An" if kind[0] in "aeiou" else "A"
        raise ConfigError(f"{article} {kind} of your own is named module:Class (e.g. {example}); got {name!r}.")
    module_name, _, qualname = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise ConfigError(
            f"{kind.capitalize()} {name!r} cannot be imported: {type(exc).__name__}: {exc} (is it on PYTHONPATH?)."
        ) from None
    except AttributeError:
        if module_name == "__main__":  # defined in the script or notebook that ran the study
            remedy = (  # a model's registry takes module:Class names; the optimizers' takes plain names
                "register the same class here first (hpo_lstm.models.register), or define it in a module on PYTHONPATH"
                if kind == "model"
                else "define it in a module on PYTHONPATH and name it module:Class"
            )
            raise ConfigError(
                f"{kind.capitalize()} {name!r} was defined in the script or notebook that ran the study, and this "
                f"one has no {qualname!r}: {remedy}."
            ) from None
        raise ConfigError(f"{kind.capitalize()} {name!r}: module {module_name!r} has no {qualname!r}.") from None
    return target
