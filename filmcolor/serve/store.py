"""The studio's job store: one SQLite file in the data folder, the only record of every job.

Nothing about a job lives only in memory. A job row is committed before the upload is answered
with 202, and every change of state is committed before anyone is told about it, so stopping the
server at any moment (Ctrl-C, SIGTERM, SIGKILL, a power cut) loses no accepted job: the next start
puts the jobs that were running back at the head of the queue (:meth:`JobStore.recover`), and a
film picks up from its finished chunks through the job engine.

SQLite in WAL mode with ``synchronous=FULL``: a commit is on disk when it returns. One connection
per thread (SQLite connections are not shared across threads); writes are short transactions.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

STATES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")
"""Every state a job can be in; the last three are final."""

FINAL_STATES: frozenset[str] = frozenset(("done", "failed", "cancelled"))

KINDS: tuple[str, ...] = ("photo", "film", "preview")
"""``photo``: one still; ``film``: a whole film as a resumable job; ``preview``: a time range."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    name TEXT NOT NULL,
    upload TEXT NOT NULL,
    result TEXT,
    settings TEXT NOT NULL,
    preview TEXT,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);
"""


@dataclass
class JobRecord:
    """One job as the store keeps it.

    Attributes:
        id: the job's public id (random, unguessable).
        kind: one of :data:`KINDS`.
        state: one of :data:`STATES`.
        name: the client's file name, for display and the download's name only (never a path).
        upload: the uploaded file, relative to the data folder (a generated name).
        result: the coloured file, relative to the data folder, once known.
        settings: run settings (:class:`~filmcolor.config.RunConfig` field names), plus
            ``references`` and ``hints`` as data-folder paths when the job is guided.
        preview: ``{"start", "end", "side_by_side"}`` for a preview job.
        created, started, finished: Unix times.
        frames_done, frames_total: progress (frames, or 1 for a photo).
        error: the one-line message of a failed job.
        seq: insertion order (the queue's order).
    """

    id: str
    kind: str
    state: str
    name: str
    upload: str
    settings: dict = field(default_factory=dict)
    preview: dict | None = None
    result: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    frames_done: int = 0
    frames_total: int | None = None
    error: str | None = None
    seq: int | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES


_JSON_FIELDS = ("settings", "preview")


def _row_to_record(row: sqlite3.Row) -> JobRecord:
    data = dict(row)
    for key in _JSON_FIELDS:
        data[key] = json.loads(data[key]) if data[key] is not None else None
    return JobRecord(**data)


class JobStore:
    """Jobs in ``<data>/studio.db``.

    Args:
        path: the database file (created with its folder if missing).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()  # one writer at a time within this process
        with self._write_lock:
            self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an error)."""
        with self._write_lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------------------
    def add(self, job: JobRecord, max_queued: int | None = None) -> int | None:
        """Insert ``job`` as queued; returns its queue position (1 = next).

        Returns None, inserting nothing, when ``max_queued`` jobs are already waiting: the
        check and the insert are one transaction, so a burst of uploads cannot overfill it.
        """
        names = [f.name for f in fields(JobRecord) if f.name != "seq"]
        values = [
            json.dumps(getattr(job, n)) if n in _JSON_FIELDS else getattr(job, n) for n in names
        ]
        with self._tx() as db:
            if max_queued is not None:
                (waiting,) = db.execute("SELECT COUNT(*) FROM jobs WHERE state='queued'").fetchone()
                if waiting >= max_queued:
                    return None
            cur = db.execute(
                f"INSERT INTO jobs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                values,
            )
            job.seq = cur.lastrowid
            (ahead,) = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE state='queued' AND seq < ?", (job.seq,)
            ).fetchone()
        return ahead + 1

    def update(self, job_id: str, **changes: object) -> None:
        """Set columns of one job (committed when this returns)."""
        if not changes:
            return
        unknown = set(changes) - {f.name for f in fields(JobRecord)}
        if unknown:
            raise KeyError(f"unknown job fields {sorted(unknown)}")
        cols = ", ".join(f"{k} = ?" for k in changes)
        values = [json.dumps(v) if k in _JSON_FIELDS else v for k, v in changes.items()]
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", [*values, job_id])

    def claim_next(self) -> JobRecord | None:
        """The oldest queued job, marked running (None when the queue is empty)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE state='queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE jobs SET state='running', started=? WHERE id=?", (now, row["id"]))
        job = _row_to_record(row)
        job.state, job.started = "running", now
        return job

    def recover(self) -> int:
        """Put the jobs a stopped server was running back in the queue, ahead of the rest.

        Their ``seq`` is kept, so they keep their place (they were the oldest). Returns how many.
        """
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET state='queued' WHERE state='running'")
            return cur.rowcount

    def delete(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    # -- reads ----------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        row = self._db().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _row_to_record(row)

    def all(self) -> list[JobRecord]:
        """Every job, oldest first."""
        rows = self._db().execute("SELECT * FROM jobs ORDER BY seq").fetchall()
        return [_row_to_record(r) for r in rows]

    def positions(self) -> dict[str, int]:
        """Queue position (1 = next) of every queued job."""
        rows = self._db().execute("SELECT id FROM jobs WHERE state='queued' ORDER BY seq")
        return {r["id"]: n for n, r in enumerate(rows, 1)}

    def count(self, state: str) -> int:
        (n,) = self._db().execute("SELECT COUNT(*) FROM jobs WHERE state=?", (state,)).fetchone()
        return n

    def recent_durations(self, limit: int = 20) -> list[float]:
        """Run times (s) of the last finished jobs, for the ``Retry-After`` estimate."""
        rows = self._db().execute(
            "SELECT finished - started FROM jobs WHERE state='done' AND started IS NOT NULL "
            "ORDER BY finished DESC LIMIT ?", (limit,)
        ).fetchall()
        return [r[0] for r in rows if r[0] is not None]
