"""The README and docs/ against the code and against each other.

A newcomer reads the README's flag table and its example output before anything else; these
tests keep them from drifting away from ``hpo-lstm run --help``, the configuration's defaults
and one another.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpo_lstm.cli import _build_parser
from hpo_lstm.config import StudyConfig

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCS = {path.name: path.read_text(encoding="utf-8") for path in sorted((ROOT / "docs").glob("*.md"))}

# Flags of the table whose default is no StudyConfig field: run options, or a default in words.
_RUN_OPTIONS = {"--workers": "cores", "--executor": "`local`", "--scheduler": None}
_IN_WORDS = {"--lookback": ("searched", None), "--timeout": ("none", None), "--season": ("from the time column", None)}


def _run_parser():
    parser = _build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return commands.choices["run"]


def _flag_table() -> list[tuple[list[str], list[str]]]:
    """(flags, defaults) of each row of the README's table of `hpo-lstm run` flags."""
    section = README.split("Main `hpo-lstm run` flags", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("| `--"):
            flags_cell, default_cell = (cell.strip() for cell in line.strip("|").split("|")[:2])
            flags = re.findall(r"`(--[a-z-]+)`", flags_cell)
            defaults = [d.strip() for d in re.split(r",\s+(?![^`]*`(?:,|$))", default_cell)]
            rows.append((flags, defaults))
        elif rows and not line.startswith("|"):
            break
    return rows


def test_the_readme_flag_table_names_real_flags_with_their_real_defaults():
    rows = _flag_table()
    assert len(rows) >= 10, rows
    run = _run_parser()
    options = {option: action for action in run._actions for option in action.option_strings}
    help_text = run.format_help()
    config = StudyConfig()
    checked = 0
    for flags, defaults in rows:
        if len(defaults) < len(flags):  # one default for several flags: the same for each
            defaults = defaults + [None] * (len(flags) - len(defaults))
        for flag, default in zip(flags, defaults, strict=True):
            assert flag in options, f"README's flag table names {flag}, which `hpo-lstm run` does not have"
            if flag in _RUN_OPTIONS or default is None:
                assert _RUN_OPTIONS.get(flag, default) == default, (flag, default)
                continue
            field = {"--storage": "storage_url"}.get(flag, flag[2:].replace("-", "_"))
            value = getattr(config, field)
            if flag in _IN_WORDS:
                words, expected = _IN_WORDS[flag]
                assert (default, value) == (words, expected), (flag, default, value)
            elif "<" in default:  # a pattern: --study-name, --storage
                pattern = default.strip("`")
                expanded = re.sub(r"<(\w+)>", lambda m: str(getattr(config, m.group(1))), pattern)
                assert value == expanded, (flag, pattern, value)
            else:
                literal = default.strip("`")
                assert str(value) == literal, f"README says {flag} defaults to {literal}; the code: {value}"
                assert re.search(rf"\(default {re.escape(literal)}\b", " ".join(help_text.split())) or (
                    flag in ("--final", "--top-k", "--out", "--pruning", "--folds", "--precision", "--device")
                ), f"`run --help` does not say {flag} defaults to {literal}"
            checked += 1
    assert checked >= 15, checked


def _command_1_block() -> str:
    match = re.search(r"```\n\$ hpo-lstm run --optimizer woa\n(.*?)```", README, re.S)
    assert match, "the README shows command 1's output in a ``` block starting with its command line"
    return match.group(1)


_FIGURE = re.compile(r"(?<![\d.])\d+\.\d{3,}(?![\d])")


def _sentences(text: str) -> list[str]:
    """The sentences of the text, and each item of a list or table row as one."""
    pieces = re.split(r"\n\s*\n|\n(?=[*|-] |\d+\. )|(?<=[.!?:;])\s+(?=[A-Z(`*])", text)
    return [" ".join(p.split()) for p in pieces if p.strip()]


def test_every_figure_quoted_for_command_1_is_the_readme_s():
    """The README's example output is the one run every doc quotes; another machine's run, once.

    A sentence of README or docs/ that speaks of command 1 may quote its figures (4 decimals or
    more) only as the README's block prints them. The one exception is the sentence of
    reliability.md that shows what the same command prints with other CPU kernels
    (`DNNL_MAX_CPU_ISA=AVX2`), which no other sentence may repeat.
    """
    block = _command_1_block()
    printed = set(_FIGURE.findall(block))
    assert len(printed) >= 10, printed
    other_kernels = [p for p in _sentences(DOCS["reliability.md"]) if "command 1" in p and "DNNL_MAX_CPU_ISA=AVX2" in p]
    assert len(other_kernels) == 1, "reliability.md shows command 1 with other kernels in one sentence"
    elsewhere = set(_FIGURE.findall(other_kernels[0])) - printed
    for name, text in {"README.md": README.replace(block, ""), **DOCS}.items():
        for sentence in _sentences(text):
            if "command 1" not in sentence:
                continue
            if name == "reliability.md" and sentence == other_kernels[0]:
                continue
            for figure in _FIGURE.findall(sentence):
                assert figure in printed, (
                    f"{name} quotes {figure} for command 1, which its output in the README does not print:"
                    f" {' '.join(sentence.split())[:200]}"
                )
                assert figure not in elsewhere, (name, figure)
    # The other kernels' run is set against the README's own figures, which it quotes as printed.
    assert set(_FIGURE.findall(other_kernels[0])) & printed, other_kernels[0]


@pytest.mark.parametrize("name", ["README.md", *sorted(DOCS)])
def test_every_relative_link_reaches_a_file_and_heading(name: str):
    text = README if name == "README.md" else DOCS[name]
    folder = ROOT if name == "README.md" else ROOT / "docs"
    prose = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.S)  # links in code are not links
    for target in re.findall(r"\]\(([^)#\s]*)(#[^)\s]*)?\)", prose):
        path, anchor = target
        if path.startswith(("http://", "https://", "mailto:")):
            continue
        file = (folder / path).resolve() if path else folder / name
        assert file.exists(), f"{name} links to {path}, which does not exist"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.M)
            slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
            assert anchor[1:] in slugs, f"{name} links to {path or name}{anchor}: no such heading"


def test_the_module_table_of_design_md_names_every_module():
    table = DOCS["design.md"].split("## Modules", 1)[1].split("\n\n", 2)[1]
    package = ROOT / "hpo_lstm"
    missing = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(package)
        folder = f"`{relative.parts[0]}/`" if len(relative.parts) > 1 else None
        named = f"`{path.name}`" in table and (folder is None or folder in table)
        if not named:
            missing.append(str(relative))
    assert not missing, f"docs/design.md's module table does not name {missing}"
