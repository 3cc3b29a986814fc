"""One driver per study: a lease with a heartbeat, kept in the study's own database.

Two drivers on one study (two terminals, two machines, a cron job started twice) would each
replay the record and then train and record the same evaluations: every evaluation index
twice. Optuna's storage API has no compare-and-set, so the lease is a row of a table
``hpo_lstm_leases`` beside Optuna's, taken in one SQL statement:

* a row for the study exists and its holder is alive -> refused, naming the holder;
* no row -> ``INSERT`` (the primary key lets one of two simultaneous drivers win);
* a row whose heartbeat is older than ``STALE_AFTER_S``, or whose holder is provably gone: a
  process of this kernel and PID namespace that no longer exists (``kill -9``, then the same
  command again) -> ``UPDATE ... WHERE holder = <the stale holder>`` (again only one of two
  simultaneous takers wins).

A driver is identified by a random token (``holder``), its host name, the kernel's boot id
(``/proc/sys/kernel/random/boot_id``) and its PID namespace (``/proc/self/ns/pid``), kept
together in the ``host`` column as ``name|boot id|namespace``. A pid says something only within
one namespace of one running kernel: two containers with host networking share a host name but
not their pids, and a driver there was taken for dead (its pid was not found here) while its
heartbeat was seconds old. A row from another namespace or kernel, or one written by an earlier
hpo-lstm (a host name alone), is taken over only when its heartbeat is stale.

The holder renews its heartbeat every ``HEARTBEAT_S`` from a daemon thread and checks, before
each write of the record, that the lease is still its own; it deletes the row when it ends.
(Written here because neither Optuna nor SQLAlchemy offers a lease; it is one table and
three statements.)
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any

from hpo_lstm._errors import StorageError

__all__ = ["HEARTBEAT_S", "STALE_AFTER_S", "StudyLease"]

HEARTBEAT_S = 5.0
STALE_AFTER_S = 60.0
_TABLE = "hpo_lstm_leases"


def _table(metadata: Any) -> Any:
    import sqlalchemy as sa

    return sa.Table(
        _TABLE,
        metadata,
        sa.Column("study", sa.String(512), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat", sa.Float, nullable=False),
    )


class StudyLease:
    """The right to drive study ``study`` of ``storage`` (an Optuna RDB storage)."""

    def __init__(self, storage: Any, study: str, *, stale_after: float = STALE_AFTER_S) -> None:
        import sqlalchemy as sa

        backend = getattr(storage, "_backend", storage)
        self._engine = backend.engine
        self._table = _table(sa.MetaData())
        self.study = study
        self.holder = uuid.uuid4().hex
        self.host = machine_key()
        self.pid = os.getpid()
        self.stale_after = stale_after
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    # Taking and giving back -------------------------------------------------------------------

    def acquire(self) -> StudyLease:
        """Take the lease or raise :class:`StorageError` naming the driver that holds it."""
        import sqlalchemy as sa

        from hpo_lstm.store._sql import create_table

        create_table(self._table, self._engine)
        table, now = self._table, time.time()
        mine = {"study": self.study, "holder": self.holder, "host": self.host, "pid": self.pid, "heartbeat": now}
        for _ in range(5):
            with self._engine.begin() as db:
                row = db.execute(sa.select(table).where(table.c.study == self.study)).first()
                if row is None:
                    try:
                        db.execute(table.insert().values(**mine))
                    except sa.exc.IntegrityError:  # another driver inserted first: look again
                        continue
                    break
                if not self._dead(row, now):
                    age = max(0.0, now - row.heartbeat)
                    raise StorageError(
                        f"Study {self.study!r} is being run by another driver (process {row.pid} on {_host_name(row.host)}, "
                        f"heartbeat {age:.0f} s ago); one driver per study. Wait for it to finish, or stop it; a "
                        f"driver whose heartbeat is {self.stale_after:.0f} s old is taken over."
                    )
                taken = db.execute(
                    table.update().where((table.c.study == self.study) & (table.c.holder == row.holder)).values(**mine)
                )
                if taken.rowcount == 1:
                    break
        else:
            raise StorageError(f"Could not take the lease of study {self.study!r}: other drivers keep taking it.")
        self._thread = threading.Thread(target=self._beat, name="hpo-lstm-lease", daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and give the lease back (if it is still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_S + 5)
        try:
            with self._engine.begin() as db:
                table = self._table
                db.execute(table.delete().where((table.c.study == self.study) & (table.c.holder == self.holder)))
        except Exception:  # the database is gone or unreachable: the lease goes stale by itself
            pass

    def __enter__(self) -> StudyLease:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    # While driving ----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`StorageError` unless the lease is still ours (called before each write)."""
        import sqlalchemy as sa

        table = self._table
        with self._engine.connect() as db:
            holder = db.execute(sa.select(table.c.holder).where(table.c.study == self.study)).scalar()
        if holder != self.holder:
            self.lost = True
            raise StorageError(
                f"Study {self.study!r} was taken over by another driver while this one was not heard from for "
                f"{self.stale_after:.0f} s (stopped or suspended?); this driver stops without recording more."
            )

    def _beat(self) -> None:

        table = self._table
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with self._engine.begin() as db:
                    renewed = db.execute(
                        table.update()
                        .where((table.c.study == self.study) & (table.c.holder == self.holder))
                        .values(heartbeat=time.time())
                    )
                if renewed.rowcount != 1:
                    self.lost = True
                    return
            except Exception:  # a busy or briefly unreachable database: try again next beat
                continue

    def _dead(self, row: Any, now: float) -> bool:
        if now - row.heartbeat > self.stale_after:
            return True
        if row.host == self.host:  # a process of this kernel and PID namespace: alive or not, we can tell at once
            if row.pid == self.pid:  # this process, whose earlier driver of the study has ended
                return True
            try:
                os.kill(row.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False


def machine_key() -> str:
    """Where this process's pid means something: ``host name|boot id|PID namespace`` ("-" for a
    part that cannot be read, as on systems without /proc)."""

    def read(path: str, link: bool = False) -> str:
        try:
            return (os.readlink(path) if link else open(path).read()).strip() or "-"
        except OSError:
            return "-"

    return "|".join(
        (socket.gethostname()[:120], read("/proc/sys/kernel/random/boot_id"), read("/proc/self/ns/pid", True))
    )


def _host_name(key: str) -> str:
    return key.split("|", 1)[0]
