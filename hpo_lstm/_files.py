"""Writing output files whole or not at all, and never through a symbolic link.

Every file a run, a report or a forecast writes goes through :func:`replacing`: the content is
written to a new temporary file in the same folder, flushed to disk, then renamed onto the
file's name (``os.replace``, atomic on POSIX). A reader, a kill or a full disk never leaves a
half-written or empty file beside older ones; at worst a hidden ``.NAME.*.tmp`` file stays. A
symbolic link at the file's name is replaced by the new file, never followed: a result folder
from someone else (``report.md -> /elsewhere``) cannot make hpo-lstm write outside it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hpo_lstm._errors import ConfigError

__all__ = ["check_real_folder", "ensure_writable", "replacing", "write_bytes", "write_text"]


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (other threads may be
    creating files); else set and restored at once."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (its suffix is ``path``'s, for writers that
    go by it); when the block ends without an error it becomes ``path`` (the file, or a link
    there, is replaced), else it is removed. An unwritable folder: a one-line ConfigError."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    except OSError as exc:
        raise ConfigError(f"Cannot write {str(path)!r}: {exc.strerror}.") from None
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # as a plain open() would have made it (mkstemp: 0600)
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"Cannot write {str(path)!r}: {exc.strerror or exc}.") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    """``path`` holds ``text`` (UTF-8), written through :func:`replacing`."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_bytes(path: str | Path, data: bytes) -> None:
    """``path`` holds ``data``, written through :func:`replacing`."""
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def write_csv(path: str | Path, frame: Any) -> None:
    """``path`` holds the pandas ``frame`` as CSV (no index), written through :func:`replacing`."""
    with replacing(path) as temporary:
        frame.to_csv(temporary, index=False)


def check_real_folder(folder: str | Path, inside: str | Path) -> Path:
    """``folder`` (a subfolder hpo-lstm writes in ``inside``, e.g. a run's ``model/``), refused
    in one line when it is a symbolic link: writing there would write wherever it points."""
    folder = Path(folder)
    if folder.is_symlink():
        raise ConfigError(
            f"{str(folder)!r} is a symbolic link (to {os.readlink(folder)!r}); hpo-lstm writes only inside "
            f"{str(inside)!r}: remove the link and run the command again."
        )
    return folder


def ensure_writable(folder: Path, *, create: bool = True) -> None:
    """Refuse a folder that cannot be made or written (a regular file in its place or above it,
    no permission, a read-only disk) in one line. ``create``: make it; else nothing is created
    and a probe file is made and removed in the nearest folder that exists (before a run trains,
    for a folder written after the training)."""
    existing = folder
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        else:
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir():
                raise ConfigError(
                    f"Output folder {str(folder)!r} cannot be made: {str(existing)!r} is a file, not a folder."
                )
        # A name of its own: drivers sharing the folder (shards) probe it at the same time.
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".hpo-lstm-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(f"Output folder {str(folder)!r} cannot be written: {exc.strerror}.") from None
