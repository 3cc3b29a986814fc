"""The layout shows the design: no import cycles among hpo_lstm's modules, and the report layer
loads no torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import hpo_lstm

PACKAGE = Path(hpo_lstm.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """hpo_lstm modules ``path`` imports anywhere (inside functions too), as module names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # "hpo_lstm.data.load_series" -> "hpo_lstm.data"
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def test_no_import_cycles_among_hpo_lstm_modules():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph = {name: _imports(path, modules) for name, path in files.items()}
    # A package's __init__ re-exporting its own submodules is not a cycle of the design.
    for name in graph:
        graph[name] = {t for t in graph[name] if not (name.startswith(t + ".") and t != "hpo_lstm")}
        if name == "hpo_lstm":
            graph[name] = set()  # the top level re-exports lazily
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "active"
        for target in sorted(graph[node]):
            if state.get(target) == "active":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_report_layer_loads_no_torch():
    code = "import sys, hpo_lstm.report; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
