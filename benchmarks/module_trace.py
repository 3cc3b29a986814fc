"""Which of hpo-lstm's modules a command passes through, and how often it goes back up.

    python benchmarks/module_trace.py [--by-package] [ARGS ...]   (default: a tiny `hpo-lstm run` on sine)

Runs ``hpo_lstm.cli.main(ARGS)`` in this process under ``sys.setprofile`` and notes every
pair of hpo_lstm modules where a function of one calls a function of the other: each distinct
pair (caller, callee) is a *move*, and a move from B to A is *back* when A called into B
earlier in the run (the path goes back up to a module it came from). Only the driver process is traced: the training workers run the same
code for every command. Prints the modules in the order they were first entered and one
key=value line: ``files=N moves=M back=K``. To compare two versions of the code, run the same
command on each checkout (PYTHONPATH=that checkout), in a fresh folder.

``--by-package`` counts each subpackage (``store``, ``data``, ``report``, ``optimizers``,
``models``, ``executors``) as one room, so that a move between two modules of one package is
not counted: how many of the house's rooms a command passes through, and how often it goes back.
"""

from __future__ import annotations

import sys
import tempfile

DEFAULT = ["run", "--data", "sine", "--optimizer", "random", "--budget", "4", "--pop-size", "2",
           "--max-epochs", "1", "--lookback", "8", "--workers", "1", "--quiet"]  # fmt: skip


BY_PACKAGE = False


def _module(frame) -> str | None:
    name = frame.f_globals.get("__name__", "")
    if not (name == "hpo_lstm" or name.startswith("hpo_lstm.")):
        return None
    if BY_PACKAGE:
        parts = name.split(".")
        top = "hpo_lstm." + parts[1] if len(parts) > 1 else name
        return top if _is_package(top) else name
    return name


def _is_package(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and hasattr(module, "__path__")


def main() -> None:
    global BY_PACKAGE
    args = sys.argv[1:]
    if args[:1] == ["--by-package"]:
        BY_PACKAGE, args = True, args[1:]
    args = args or DEFAULT
    if not any(a == "--out" for a in args) and args[0] in ("run", "compare"):
        args = [*args, "--out", tempfile.mkdtemp(prefix="module-trace-")]
    from hpo_lstm.cli import main as cli_main

    order: list[str] = []
    edges: dict[tuple[str, str], bool] = {}  # (caller, callee) -> whether it went back up

    def profile(frame, event, arg):
        if event != "call":
            return
        callee = _module(frame)
        if callee is None or frame.f_code.co_name == "<module>":  # an import runs the module's body
            return
        back_frame = frame.f_back
        caller = _module(back_frame) if back_frame is not None and back_frame.f_code.co_name != "<module>" else None
        if callee not in order:
            order.append(callee)
        if caller is None or caller == callee or (caller, callee) in edges:
            return
        edges[(caller, callee)] = (callee, caller) in edges

    sys.setprofile(profile)
    try:
        code = cli_main(args)
    finally:
        sys.setprofile(None)
    print("modules, in the order first entered:", ", ".join(m.removeprefix("hpo_lstm.") for m in order))
    back = [f"{a.removeprefix('hpo_lstm.')}->{b.removeprefix('hpo_lstm.')}" for (a, b), up in edges.items() if up]
    print("moves back up:", ", ".join(back) or "none")
    print(f"exit={code} files={len(order)} moves={len(edges)} back={len(back)}")


if __name__ == "__main__":
    main()
