"""The batch catalogue: one SQLite file that remembers every video analysed and every sample.

Tables (``docs/batch.md`` has the full schema)::

    videos    one row per analysis of a video: key, content_sha256, params, model_sha256,
              status (running / done / failed), error, attempts, timings, results
    members   which videos (path, key) are the replicate fields of which sample
    samples   one row per sample: its videos combined (:mod:`active.batch.cohort`)
    files     path, size, mtime -> content SHA-256, so a re-run does not hash the archive again
    jobs      the lab's web page (``active serve``): one row per sample uploaded there, its
              status, calibration, uploaded videos and headline numbers (:mod:`active.web.store`)
    meta      schema version (an older catalogue is brought up to date when opened)

A video's **key** is the SHA-256 of its content hash, its analysis parameters and the model's
SHA-256: the same bytes analysed the same way by the same model are one row, wherever the file
lies and however often it is listed, so a re-run skips what is done and counts nothing twice.

Only the process that runs the batch (or the web server) writes, each change in one
transaction (a killed run leaves the file as it was after its last complete video); a lock file
keeps a second writer of the same catalogue out. Readers (``sqlite3``, pandas) may read while it
runs (WAL journal).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from active.errors import UsageError

#: 1: videos, members, samples, files (batch). 2: + jobs (the web page).
SCHEMA_VERSION = 2
CATALOGUE = "catalogue.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    key TEXT PRIMARY KEY,
    content_sha256 TEXT NOT NULL,
    params_sha256 TEXT NOT NULL,
    params TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    path TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    started_at TEXT,
    finished_at TEXT,
    seconds REAL,
    timings TEXT,
    frames INTEGER,
    model TEXT,
    result TEXT,
    parts TEXT,
    outputs TEXT,
    active_version TEXT);
CREATE INDEX IF NOT EXISTS videos_status ON videos (status);
CREATE TABLE IF NOT EXISTS members (
    sample_id TEXT NOT NULL, path TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (sample_id, path));
CREATE INDEX IF NOT EXISTS members_key ON members (key);
CREATE TABLE IF NOT EXISTS samples (
    sample_id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'partial', 'failed')),
    videos INTEGER NOT NULL, done INTEGER NOT NULL, failed INTEGER NOT NULL,
    um_per_px REAL, chamber_depth_um REAL, dilution REAL,
    concentration_m_per_ml REAL, concentration_ci95_low REAL, concentration_ci95_high REAL,
    cells_counted REAL, graded_tracks INTEGER,
    rapid_progressive_pct REAL, slow_progressive_pct REAL, non_progressive_pct REAL,
    immotile_pct REAL, progressive_pct REAL, total_motility_pct REAL,
    vcl_median_um_per_s REAL, vsl_median_um_per_s REAL, vap_median_um_per_s REAL,
    lin_median REAL, alh_median_um REAL, bcf_median_hz REAL,
    below_reference TEXT, low_count INTEGER, notes TEXT, model_sha256 TEXT,
    result TEXT, updated_at TEXT);
"""

#: Schema 2: the samples uploaded on the web page. ``folder`` is relative to the server's data
#: folder; ``videos`` (JSON) lists each upload's generated file name beside the name the browser
#: gave (shown, never used as a path); the headline numbers are copied from summary.json when the
#: job is done, so the list of past samples needs no file.
_JOBS = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    sample_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT,
    folder TEXT NOT NULL,
    videos TEXT NOT NULL,
    calibration TEXT NOT NULL,
    settings TEXT NOT NULL,
    frames INTEGER,
    concentration_m_per_ml REAL, progressive_pct REAL, total_motility_pct REAL,
    cells_counted REAL, notes TEXT, active_version TEXT);
CREATE INDEX IF NOT EXISTS jobs_sample ON jobs (sample_id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

#: What each schema version adds to the one before it, run in order when an older catalogue is
#: opened (a batch catalogue of schema 1 gains the web's table and keeps everything else).
_MIGRATIONS = {2: _JOBS}


def now() -> str:
    """The time in UTC, ISO 8601 to the millisecond (what every timestamp column holds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def video_key(content_sha256: str, params_sha256: str, model_sha256: str) -> str:
    """The catalogue's key of one analysis: what was analysed, how, and by which model."""
    return hashlib.sha256(f"{content_sha256}:{params_sha256}:{model_sha256}".encode()).hexdigest()


@dataclass(frozen=True)
class Planned:
    """A video the run was asked for, with its key (``members`` rows; ``videos`` when new)."""

    key: str
    path: Path
    sample_id: str
    content_sha256: str
    params: dict[str, Any]
    params_sha256: str
    model_sha256: str


class Catalogue:
    """The catalogue at ``path`` (created when missing), locked for this process while open."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = _lock(self.path.with_name(self.path.name + ".lock"))
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL: safe against a killed process
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._lock.close()
            raise UsageError(f"{self.path}: not a usable catalogue ({exc})") from None
        except BaseException:
            self._lock.close()
            raise

    def _migrate(self) -> None:
        """Create the tables of a new catalogue, or bring an older one up to this schema, in
        one transaction each."""
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, "
                        "value TEXT NOT NULL)")
        row = self.db.execute("SELECT value FROM meta WHERE name='schema_version'").fetchone()
        if row is None:
            with self.db:
                self.db.executescript(_SCHEMA + "".join(_MIGRATIONS.values()))
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                                (str(SCHEMA_VERSION),))
            return
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise UsageError(f"{self.path}: catalogue schema {version} is newer than this "
                             f"ACTIVE reads ({SCHEMA_VERSION}); upgrade ACTIVE")
        for v in range(version + 1, SCHEMA_VERSION + 1):
            # executescript commits first, so BEGIN makes the tables and the version one step
            self.db.executescript(f"BEGIN; {_MIGRATIONS[v]} UPDATE meta SET value='{v}' "
                                  "WHERE name='schema_version'; COMMIT;")

    def close(self) -> None:
        self.db.close()
        self._lock.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- content hashes -------------------------------------------------------------------

    def content_sha256(self, path: Path) -> str:
        """The SHA-256 of ``path``'s bytes, from the cache while its size and mtime are
        unchanged."""
        st = path.stat()
        name = str(path.resolve())
        row = self.db.execute("SELECT size, mtime_ns, sha256 FROM files WHERE path=?",
                              (name,)).fetchone()
        if row is not None and (row["size"], row["mtime_ns"]) == (st.st_size, st.st_mtime_ns):
            return str(row["sha256"])
        digest = sha256_file(path)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)",
                            (name, st.st_size, st.st_mtime_ns, digest))
        return digest

    # ---- videos ---------------------------------------------------------------------------

    def statuses(self, keys: Iterable[str]) -> dict[str, str]:
        """The status of each key already in the catalogue."""
        out: dict[str, str] = {}
        keys = list(keys)
        for i in range(0, len(keys), 500):  # SQLite's limit on bound parameters
            chunk = keys[i:i + 500]
            q = f"SELECT key, status FROM videos WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({r["key"]: r["status"] for r in self.db.execute(q, chunk)})
        return out

    def start(self, planned: list[Planned], todo: set[str], version: str) -> None:
        """Record the run's plan in one transaction: each sample's members, and every video to
        analyse as ``running`` (its attempts counted)."""
        with self.db:
            for sample in {p.sample_id for p in planned}:
                self.db.execute("DELETE FROM members WHERE sample_id=?", (sample,))
            self.db.executemany("INSERT OR REPLACE INTO members VALUES (?, ?, ?)",
                                [(p.sample_id, str(p.path), p.key) for p in planned])
            seen: set[str] = set()
            for p in planned:
                if p.key not in todo or p.key in seen:
                    continue
                seen.add(p.key)
                self.db.execute(
                    "INSERT INTO videos (key, content_sha256, params_sha256, params, "
                    "model_sha256, path, sample_id, status, attempts, active_version) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, 'running', 1, ?) ON CONFLICT (key) DO UPDATE "
                    "SET status='running', error=NULL, attempts=attempts + 1, path=excluded.path,"
                    " sample_id=excluded.sample_id, active_version=excluded.active_version",
                    (p.key, p.content_sha256, p.params_sha256, json.dumps(p.params),
                     p.model_sha256, str(p.path), p.sample_id, version))

    def finish(self, key: str, fields: dict[str, Any],
               samples: Callable[[], list[dict[str, Any]]]) -> None:
        """One video's outcome (``fields``: the ``videos`` columns to set) and the rows of the
        samples it belongs to (``samples()``, which reads the updated row), in one
        transaction."""
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.db:
            self.db.execute(f"UPDATE videos SET {cols} WHERE key=?", (*fields.values(), key))
            self._put_samples(samples())

    def put_samples(self, samples: list[dict[str, Any]]) -> None:
        with self.db:
            self._put_samples(samples)

    def _put_samples(self, samples: list[dict[str, Any]]) -> None:
        for row in samples:
            cols = list(row)
            self.db.execute(f"INSERT OR REPLACE INTO samples ({', '.join(cols)}) VALUES "
                            f"({', '.join('?' * len(cols))})", [row[c] for c in cols])

    # ---- reading --------------------------------------------------------------------------

    def members(self, sample_id: str) -> list[sqlite3.Row]:
        """The sample's videos: path, key and (where analysed) status, error and parts."""
        return self.db.execute(
            "SELECT m.path, m.key, v.status, v.error, v.parts, v.model_sha256 FROM members m "
            "LEFT JOIN videos v ON v.key = m.key WHERE m.sample_id=? ORDER BY m.path",
            (sample_id,)).fetchall()

    def samples_of(self, key: str) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT sample_id FROM members WHERE key=? ORDER BY sample_id", (key,))]

    def sample_rows(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM samples ORDER BY sample_id")]

    def failed_videos(self) -> list[dict[str, Any]]:
        """Failed videos that are a member of a sample (path and error), for the summary."""
        return [dict(r) for r in self.db.execute(
            "SELECT m.sample_id, m.path, v.error FROM members m JOIN videos v ON v.key = m.key "
            "WHERE v.status='failed' ORDER BY m.sample_id, m.path")]


class _Lock:
    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.fh.close()  # closing releases the lock


def _lock(path: Path) -> _Lock:
    """An exclusive lock on ``path`` for as long as this process holds it (a killed process
    releases it), so two runs never write one catalogue."""
    fh = open(path, "a+")  # noqa: SIM115 - held open for the catalogue's lifetime
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one run at a time is the user's to keep
        return _Lock(fh)
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.seek(0)
        pid = fh.read().strip() or "?"
        fh.close()
        raise UsageError(f"{path.with_suffix('')}: another ACTIVE process (pid {pid}: an "
                         "'active analyze' batch or an 'active serve') is writing this "
                         "catalogue; wait for it to finish or stop it") from None
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return _Lock(fh)


@contextlib.contextmanager
def opened(path: str | Path) -> Iterator[Catalogue]:
    cat = Catalogue(path)
    try:
        yield cat
    finally:
        cat.close()
