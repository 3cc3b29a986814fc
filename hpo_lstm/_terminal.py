"""Plain text that fits the terminal: the listing commands and the one-line notes of a run.

Written by hand (textwrap) rather than with rich, which pads table cells with trailing spaces
and measures nothing but the terminal: a listing piped to a file or another program stays
plain, 80 columns wide unless ``COLUMNS`` says otherwise.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterable, Sequence

__all__ = ["columns", "print_rows", "wrap"]

# A name column wider than this puts its description on the next line.
_MAX_NAME = 30


def columns() -> int:
    """The terminal's width: ``COLUMNS`` when set, the terminal's own, else 80."""
    return max(40, shutil.get_terminal_size(fallback=(80, 24)).columns)


def wrap(text: str, *, width: int | None = None, indent: str = "") -> str:
    """``text`` wrapped to ``width`` (the terminal's), continuation lines indented."""
    return (
        "\n".join(
            textwrap.wrap(
                text, width=width or columns(), subsequent_indent=indent, break_on_hyphens=False, break_long_words=True
            )
        )
        or text
    )


def print_rows(
    rows: Sequence[tuple[str, str]], *, header: str | None = None, footer: Iterable[str] = (), width: int | None = None
) -> None:
    """``name  description`` per row, the descriptions in one column and wrapped under it; a
    header and footer paragraphs wrapped to the same width. No line ends in a space."""
    width = width or columns()
    if header:
        print(wrap(header, width=width))
    name_width = min(max((len(name) for name, _ in rows), default=0), _MAX_NAME)
    for name, description in rows:
        if len(name) > name_width:  # a long name: the description below it
            print(name)
            print(wrap(" " * (name_width + 2) + description, width=width, indent=" " * (name_width + 2)))
            continue
        first = f"{name:<{name_width}}  "
        lines = textwrap.wrap(description, width=max(20, width - len(first)), break_on_hyphens=False) or [""]
        print((first + lines[0]).rstrip())
        for line in lines[1:]:
            print(" " * len(first) + line)
    for paragraph in footer:
        print(wrap(paragraph, width=width))


class _NoTrailingSpaces:
    """A text stream that drops the spaces rich pads its lines with (centred titles, cells)
    before each newline, colour codes after them kept; everything else passes through."""

    _PADDING = None

    def __init__(self, stream) -> None:
        import re

        self._stream = stream
        self._pending = ""
        if _NoTrailingSpaces._PADDING is None:
            _NoTrailingSpaces._PADDING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)\n")

    def write(self, text: str) -> int:
        text = self._pending + text
        cut = text.rfind("\n") + 1
        self._pending = text[cut:]
        if cut:
            self._stream.write(self._PADDING.sub(r"\1\n", text[:cut]))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._pending.rstrip(" "))
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def console():
    """A rich Console on stdout, as wide as the terminal (``COLUMNS``, else 80 off a terminal),
    whose lines end without padding spaces."""
    import sys

    from rich.console import Console

    return Console(file=_NoTrailingSpaces(sys.stdout), width=columns())
