"""Storage URLs: passwords masked wherever a URL is printed or written, the URL from the
environment, and in-memory databases refused.

* :func:`mask_url` replaces a URL's password with ``***`` (``postgresql://alice:***@host/db``)
  and leaves every other URL exactly as it was (SQLite paths included), so a masked URL with
  no password is still the URL itself. :func:`mask_secrets` does the same to every URL inside
  a text (an error message).
* Files (summary.json, compare.json, model.json, report.md) hold the masked URL. A reader that
  needs the storage again (``hpo-lstm report``, ``forecast``) gets the password from
  :data:`ENV_VAR` (``HPO_LSTM_STORAGE``) when its masked form is the written one
  (:func:`resolve_url`), or from a URL this process has opened already (``hpo-lstm compare``
  writes its report right after its cells).
* ``sqlite:///:memory:`` and ``sqlite://`` are databases that vanish with the process: a study
  recorded there is lost. :func:`check_persistent` refuses them.

Pure Python (no SQLAlchemy), so the CLI's errors stay light. The password is what SQLAlchemy
takes for one: the text between the first ``:`` of the part after ``scheme://`` and the ``@``
that ends the credentials (the last ``@`` before the host's ``/``), so a raw ``@`` inside a
password is masked too; ``password=`` / ``passwd=`` / ``pwd=`` query parameters (handed to the
driver) are masked as well.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from hpo_lstm._errors import ConfigError

__all__ = [
    "ENV_VAR",
    "MASK",
    "check_persistent",
    "env_storage",
    "is_in_memory",
    "is_masked",
    "mask_secrets",
    "mask_url",
    "remember_url",
    "resolve_url",
]
ENV_VAR = "HPO_LSTM_STORAGE"
MASK = "***"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:password|passwd|pwd)=)([^&#]*)")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"]+")
_KNOWN: dict[str, str] = {}  # masked -> full URL, for URLs this process opened


def _credentials_end(rest: str) -> int:
    """Index in ``rest`` (the URL after ``scheme://``) of the ``@`` ending its credentials, or -1."""
    at = rest.find("@")
    if at < 0:
        return -1
    while True:  # a later "@" before the host's "/", "?" or "#" means the first was inside the password
        following = rest.find("@", at + 1)
        if following < 0:
            return at
        ends = [i for i in (rest.find(c, at + 1) for c in "/?#") if i >= 0]
        if ends and min(ends) < following:
            return at
        at = following


def _split(url: str) -> tuple[str, str | None, str]:
    """``url`` as (before the password, the password or None, after it)."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return url, None, ""
    head, rest = url[: scheme.end()], url[scheme.end() :]
    end = _credentials_end(rest)
    if end < 0:
        return url, None, ""
    user, colon, password = rest[:end].partition(":")
    if not colon or any(c in user for c in "/?#"):  # no password, or the "@" is in a path (sqlite:////a:b@c)
        return url, None, ""
    return head + user + ":", password, rest[end:]


def mask_url(url: object) -> str:
    """``url`` with its password (and any ``password=`` query parameter) replaced by ``***``;
    any other URL unchanged. Not a string: its ``repr``, which holds no URL to mask."""
    if not isinstance(url, str):
        return repr(url)
    before, password, after = _split(url)
    masked = url if password is None else f"{before}{MASK}{after}"
    return _QUERY_SECRET.sub(lambda m: m.group(1) + MASK, masked)


def mask_secrets(text: str) -> str:
    """Every URL in ``text`` masked (:func:`mask_url`): for error messages that may quote one."""
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


def is_masked(url: str) -> bool:
    """Whether ``url`` is a masked URL whose password was left out (``***``)."""
    _, password, _ = _split(url)
    return password == MASK or any(m.group(2) == MASK for m in _QUERY_SECRET.finditer(url))


def remember_url(url: str) -> None:
    """Note a URL this process opened, so that a report written by the same process finds it
    again from its masked form (``hpo-lstm compare`` and the Python API)."""
    masked = mask_url(url)
    if masked != url:
        _KNOWN[masked] = url


def env_storage() -> str | None:
    """The storage URL in ``HPO_LSTM_STORAGE``, or None when it is unset or empty."""
    return os.environ.get(ENV_VAR) or None


def resolve_url(url: str, *, named_in: str) -> str:
    """The usable URL for ``url`` as a file wrote it: itself, unless its password was masked;
    then the full URL this process opened or ``HPO_LSTM_STORAGE`` holds, if its masked form is
    ``url``. Else a one-line :class:`ConfigError` saying to set ``HPO_LSTM_STORAGE``."""
    if not is_masked(url):
        return url
    if url in _KNOWN:
        return _KNOWN[url]
    env = env_storage()
    if env is not None and mask_url(env) == url:
        return env
    hint = f"{ENV_VAR} holds another storage ({mask_url(env)!r})" if env is not None else f"{ENV_VAR} is not set"
    raise ConfigError(
        f"{named_in} names the storage {url!r}, whose password is not written in files; set {ENV_VAR} to its full "
        f"URL ({hint})."
    )


def sqlite_path(url: str) -> str | None:
    """The file of an SQLite URL (``sqlite:///x.db`` -> ``x.db``, also a ``file:`` URI); None
    for other databases."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.lower().startswith("sqlite"):
        return None
    path = (rest[1:] if rest.startswith("/") else rest).partition("?")[0]
    return unquote(path[len("file:") :]) if path.startswith("file:") else path


def is_in_memory(url: str) -> bool:
    """Whether ``url`` is an SQLite database that lives in memory only: ``sqlite://``,
    ``sqlite:///:memory:``, ``sqlite:///`` or a ``file::memory:`` / ``mode=memory`` URI."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme.lower().startswith("sqlite"):
        return False
    path, _, query = rest.partition("?")
    path = path[1:] if path.startswith("/") else path  # sqlite:///x: the third "/" separates
    return (
        path in ("", ":memory:")
        or path.startswith("file::memory:")
        or path.startswith(":memory:")
        or "mode=memory" in query.lower()
    )


def check_persistent(url: str, *, source: str = "`storage`") -> str:
    """``url`` when it is not an in-memory database; else a one-line :class:`ConfigError`
    (studies there would be lost when the command ends, after every training)."""
    if is_in_memory(url):
        raise ConfigError(
            f"{source} ({mask_url(url)!r}) is an in-memory database: every study recorded there is lost when the "
            "command ends. Give a file (e.g. sqlite:///results/hpo-lstm.db) or a database server's URL."
        )
    return url
