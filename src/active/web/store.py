"""The web page's jobs: rows of the catalogue's ``jobs`` table (schema and migrations in
:mod:`active.batch.catalogue`), one per sample uploaded.

The server holds the catalogue open (and so its lock: a batch run cannot write the same file at
the same time) for as long as it runs; each query opens its own short-lived connection, so the
request threads and the runner's thread never share one. Writes are serialised by a lock.

A job's life: ``queued`` (uploaded, waiting for a worker) -> ``running`` -> ``done`` or
``failed`` (with the reason). ``attempts`` counts how often a worker started it.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from active.batch.catalogue import CATALOGUE, Catalogue, now

STATUSES = ("queued", "running", "done", "failed")
#: A job id: 16 hex digits, generated here; anything else in a URL is not a job.
JOB_ID = re.compile(r"^[0-9a-f]{16}$")


def new_job_id() -> str:
    return secrets.token_hex(8)


@dataclass
class Job:
    """One row of ``jobs``. ``videos``: per upload, ``file`` (its generated name in the job's
    ``inputs/``), ``name`` (the name the browser sent: shown, never used as a path), ``bytes``,
    ``frames``; ``calibration``: :class:`~active.analysis.calibration.Calibration` as JSON;
    ``settings``: the detector's (model, threshold, profile)."""

    id: str
    sample_id: str
    status: str
    created_at: str
    folder: str
    videos: list[dict[str, Any]]
    calibration: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    frames: int | None = None
    concentration_m_per_ml: float | None = None
    progressive_pct: float | None = None
    total_motility_pct: float | None = None
    cells_counted: float | None = None
    notes: list[str] = field(default_factory=list)
    active_version: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        d = dict(row)
        for k in ("videos", "calibration", "settings", "notes"):
            d[k] = json.loads(d[k]) if d.get(k) else ([] if k in ("videos", "notes") else {})
        return cls(**d)

    def to_row(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        for k in ("videos", "calibration", "settings", "notes"):
            d[k] = json.dumps(d[k])
        return d


def local_day_bounds(first: date | None, last: date | None) -> tuple[str | None, str | None]:
    """The stored (UTC) timestamps of the start of local day ``first`` and of the day after
    ``last`` (this server's clock), for ``first <= created_at < end``."""

    def start(day: date) -> str:
        return datetime.combine(day, time()).astimezone().astimezone(UTC).isoformat(
            timespec="milliseconds")

    return (start(first) if first else None,
            start(last + timedelta(days=1)) if last else None)


class JobStore:
    """The ``jobs`` table of ``data/catalogue.sqlite`` (created or migrated when opened)."""

    def __init__(self, data: Path) -> None:
        self.path = Path(data) / CATALOGUE
        self._catalogue = Catalogue(self.path)  # schema + the lock, for the server's lifetime
        self._write = threading.Lock()

    def close(self) -> None:
        self._catalogue.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.row_factory = sqlite3.Row
            yield db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._write, self._db() as db, db:
            yield db

    # ---- reading ----------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        if not JOB_ID.match(job_id):
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        return None if row is None else Job.from_row(row)

    def search(self, sample: str = "", first: date | None = None, last: date | None = None,
               status: str = "", limit: int = 500) -> list[Job]:
        """Jobs whose sample id contains ``sample`` (any case), uploaded on a local day from
        ``first`` to ``last``, with ``status`` (all when empty); newest first."""
        where, args = [], []
        if sample:
            where.append("instr(lower(sample_id), lower(?)) > 0")
            args.append(sample)
        lo, hi = local_day_bounds(first, last)
        if lo:
            where.append("created_at >= ?")
            args.append(lo)
        if hi:
            where.append("created_at < ?")
            args.append(hi)
        if status:
            where.append("status = ?")
            args.append(status)
        sql = ("SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY created_at DESC LIMIT ?")
        with self._db() as db:
            return [Job.from_row(r) for r in db.execute(sql, (*args, limit))]

    def ids(self) -> set[str]:
        with self._db() as db:
            return {r[0] for r in db.execute("SELECT id FROM jobs")}

    # ---- writing ----------------------------------------------------------------------------

    def add(self, job: Job) -> None:
        row = job.to_row()
        with self._tx() as db:
            db.execute(f"INSERT INTO jobs ({', '.join(row)}) VALUES "
                       f"({', '.join('?' * len(row))})", list(row.values()))

    def claim_next(self) -> Job | None:
        """The oldest queued job, now ``running`` (started now, one more attempt)."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE status='queued' ORDER BY created_at "
                             "LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status='running', started_at=?, attempts=attempts + 1, "
                       "error=NULL WHERE id=?", (now(), row[0]))
            job = db.execute("SELECT * FROM jobs WHERE id=?", (row[0],)).fetchone()
        return Job.from_row(job)

    def finish(self, job_id: str, status: str, error: str | None = None,
               numbers: dict[str, Any] | None = None) -> None:
        """Record the outcome: ``done`` with the headline ``numbers`` (columns of ``jobs``), or
        ``failed`` with the reason."""
        cols: dict[str, Any] = {"status": status, "error": error, "finished_at": now()}
        for k, v in (numbers or {}).items():
            cols[k] = json.dumps(v) if k == "notes" else v
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {', '.join(f'{k}=?' for k in cols)} WHERE id=?",
                       (*cols.values(), job_id))

    def recover(self, max_attempts: int) -> dict[str, str]:
        """After a restart: every job left ``running`` is queued again, or marked failed with
        the reason once it has been started ``max_attempts`` times. Returns id -> what was
        done ("queued" or "failed")."""
        out: dict[str, str] = {}
        with self._tx() as db:
            for r in db.execute("SELECT id, attempts FROM jobs WHERE status='running'"
                                ).fetchall():
                if r["attempts"] >= max_attempts:
                    db.execute("UPDATE jobs SET status='failed', finished_at=?, error=? WHERE "
                               "id=?", (now(), f"interrupted {r['attempts']} times (the server "
                               "stopped or the analysis process was killed while it ran); not "
                               "started again: delete it and upload the videos again",
                               r["id"]))
                    out[r["id"]] = "failed"
                else:
                    db.execute("UPDATE jobs SET status='queued', started_at=NULL WHERE id=?",
                               (r["id"],))
                    out[r["id"]] = "queued"
        return out

    def delete(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))
