"""The SQLite run store: runs, probes, replies, judgments and the judge cache.

One file (WAL mode, so readers never block the writer and a killed writer leaves it consistent)
holds any number of runs. Replies are keyed by :meth:`Store.reply_key` -- a hash of the model
spec hash, the generation-params hash, the probe id and the sample index -- which is unique, so
a reply is never stored twice and a re-run finds (and skips) what it already has. A reply is
linked to every run that used it through ``run_replies``.

A run directory (``--out RUN_DIR``) holds ``run.json`` (``{"run_id", "store"}``) and
``manifest.json``; :func:`read_run_info` is the one reader of ``run.json``, :func:`open_run`
opens the run it names.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harmscope import secrets
from harmscope.errors import HarmscopeError, InputError
from harmscope.safeio import atomic_write_text
from harmscope.types import Judgment, Probe, Response, RunManifest, canonical_json

if TYPE_CHECKING:
    import pandas as pd

STORE_SCHEMA_VERSION = 1
STORE_FILENAME = "harmscope.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    probe_set_hash TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    manifest TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS probes (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id)
);
CREATE TABLE IF NOT EXISTS replies (
    key TEXT PRIMARY KEY,
    probe_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_replies (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS judgments (
    run_id TEXT NOT NULL,
    probe_id TEXT NOT NULL,
    sample INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    judge TEXT NOT NULL,
    judge_version TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, probe_id, sample, rule_id, judge)
);
CREATE TABLE IF NOT EXISTS judge_cache (
    judge TEXT NOT NULL,
    version TEXT NOT NULL,
    reply_hash TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (judge, version, reply_hash, rule_id)
);
CREATE INDEX IF NOT EXISTS judgments_by_judge ON judgments (run_id, judge);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def busy_timeout() -> float:
    """Seconds to wait for a store locked by another process (``$HARMSCOPE_STORE_BUSY_TIMEOUT``)."""
    try:
        return max(0.0, float(os.environ.get("HARMSCOPE_STORE_BUSY_TIMEOUT", "30")))
    except ValueError:
        return 30.0


class StoreError(HarmscopeError):
    """The store cannot be read or written (locked, corrupt, disk full): one line naming it."""


def store_fault(path: Path, exc: BaseException) -> StoreError:
    """One line naming the store and the cause of a SQLite error."""
    msg = str(exc).lower()
    if "locked" in msg or "busy" in msg:
        cause = (f"locked by another process (waited {busy_timeout():g} s); close the other harmscope "
                 "or sqlite3 session and run the same command again")
    elif "full" in msg or "disk i/o" in msg or "no space" in msg:
        cause = "disk full or I/O error; free space and run the same command again"
    elif "malformed" in msg or "not a database" in msg or "corrupt" in msg:
        cause = ("corrupt (malformed database); committed data may be recoverable with "
                 "`sqlite3 FILE .recover`")
    elif "readonly" in msg or "read-only" in msg:
        cause = "read-only; check the file's permissions"
    else:
        cause = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return StoreError(f"{path}: run store {cause}")


def text_hash(text: str) -> str:
    """Hash of a reply text, the ``reply_hash`` used by the judge cache."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Store:
    """A harmscope run store in one SQLite file (WAL mode). Safe to share between threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout(), check_same_thread=False, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise HarmscopeError(f"{self.path}: cannot open the run store ({exc})") from None
        self._lock = threading.RLock()
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout() * 1000)}")
            with self._tx() as c:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                row = c.execute("SELECT version FROM schema_version").fetchone()
                if row is None:
                    c.execute("INSERT INTO schema_version VALUES (?)", (STORE_SCHEMA_VERSION,))
                elif row[0] > STORE_SCHEMA_VERSION:
                    raise HarmscopeError(
                        f"{self.path}: store schema version {row[0]} is newer than this harmscope "
                        f"({STORE_SCHEMA_VERSION}); upgrade harmscope"
                    )
        except sqlite3.OperationalError as exc:
            self._conn.close()
            raise store_fault(self.path, exc) from None
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise HarmscopeError(f"{self.path}: not a harmscope run store or corrupt ({exc})") from None

    # ------------------------------------------------------------------ plumbing
    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the store at ``path``."""
        return cls(path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on error."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise store_fault(self.path, exc) from None
            try:
                yield self._conn
            except sqlite3.Error as exc:
                self._rollback()
                raise store_fault(self.path, exc) from None
            except BaseException:
                self._rollback()
                raise
            else:
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._rollback()
                    raise store_fault(self.path, exc) from None

    def _rollback(self) -> None:
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back (e.g. disk full)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise store_fault(self.path, exc) from None

    def check(self) -> None:
        """Raise a one-line :class:`StoreError` if SQLite finds the file damaged."""
        rows = self._query("PRAGMA quick_check")
        problems = [str(r[0]) for r in rows if str(r[0]).lower() != "ok"]
        if problems:
            raise StoreError(f"{self.path}: run store is corrupt ({problems[0][:160]}); committed data may "
                             "be recoverable with `sqlite3 FILE .recover`")

    @property
    def schema_version(self) -> int:
        return int(self._query("SELECT version FROM schema_version")[0][0])

    # ------------------------------------------------------------------ runs
    def save_run(self, manifest: RunManifest) -> None:
        """Insert or update a run's manifest."""
        with self._tx() as c:
            c.execute(
                "INSERT INTO runs (run_id, model, probe_set_hash, started_at, ended_at, manifest, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET model=excluded.model,"
                " probe_set_hash=excluded.probe_set_hash, started_at=excluded.started_at,"
                " ended_at=excluded.ended_at, manifest=excluded.manifest, updated_at=excluded.updated_at",
                (
                    manifest.run_id,
                    manifest.model,
                    manifest.probe_set_hash,
                    manifest.started_at,
                    manifest.ended_at,
                    secrets.mask(manifest.model_dump_json()),
                    _now(),
                ),
            )

    def get_run(self, run_id: str) -> RunManifest:
        """The manifest of ``run_id``; a unique prefix of the id is accepted."""
        rows = self._query("SELECT manifest FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            rows = self._query("SELECT manifest FROM runs WHERE run_id LIKE ?", (run_id + "%",))
            if len(rows) > 1:
                raise HarmscopeError(f"{self.path}: run id prefix {run_id!r} is ambiguous")
        if not rows:
            raise HarmscopeError(f"{self.path}: no run {run_id!r} in this store")
        return RunManifest.model_validate_json(rows[0][0])

    def has_run(self, run_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))

    def list_runs(self) -> pd.DataFrame:
        """One row per run: id, model, probe set, times, counts (answered, failed, cached)."""
        import pandas as pd

        self.check()
        rows = self._query(
            "SELECT r.run_id, r.model, r.probe_set_hash, r.started_at, r.ended_at, r.manifest,"
            " (SELECT COUNT(*) FROM probes p WHERE p.run_id = r.run_id),"
            " (SELECT COUNT(*) FROM run_replies rr WHERE rr.run_id = r.run_id)"
            " FROM runs r ORDER BY r.started_at, r.run_id"
        )
        records = []
        for run_id, model, psh, start, end, manifest, n_probes, n_replies in rows:
            counts = json.loads(manifest).get("counts", {})
            records.append(
                {
                    "run_id": run_id,
                    "model": model,
                    "probe_set_hash": psh,
                    "started_at": start,
                    "ended_at": end,
                    "probes": int(n_probes),
                    "replies": int(n_replies),
                    "answered": int(counts.get("answered", 0)),
                    "failed": int(counts.get("failed", 0)),
                    "cached": int(counts.get("cached", 0)),
                }
            )
        cols = ["run_id", "model", "probe_set_hash", "started_at", "ended_at", "probes", "replies",
                "answered", "failed", "cached"]
        return pd.DataFrame.from_records(records, columns=cols)

    # ------------------------------------------------------------------ probes
    def add_probes(self, run_id: str, probes: Iterable[Probe]) -> None:
        """Record the probes of a run (idempotent; the first position of a probe is kept)."""
        with self._tx() as c:
            start = c.execute("SELECT COUNT(*) FROM probes WHERE run_id = ?", (run_id,)).fetchone()[0]
            c.executemany(
                "INSERT OR IGNORE INTO probes (run_id, probe_id, position, data) VALUES (?, ?, ?, ?)",
                ((run_id, p.id, start + i, p.model_dump_json()) for i, p in enumerate(probes)),
            )

    def probes(self, run_id: str) -> list[Probe]:
        rows = self._query("SELECT data FROM probes WHERE run_id = ? ORDER BY position", (run_id,))
        return [Probe.model_validate_json(r[0]) for r in rows]

    # ------------------------------------------------------------------ replies
    @staticmethod
    def reply_key(model_hash: str, params_hash: str, probe_id: str, sample: int) -> str:
        """The unique key of one reply: a hash of who answered, how, what and which sample."""
        raw = f"{model_hash}\x1f{params_hash}\x1f{probe_id}\x1f{int(sample)}"
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]

    def put_reply(self, run_id: str, key: str, response: Response) -> None:
        """Store one reply (its own transaction); see :meth:`put_replies`."""
        self.put_replies(run_id, [(key, response)])

    def put_replies(self, run_id: str, items: Iterable[tuple[str, Response]]) -> None:
        """Store several replies in one transaction.

        A stored good reply is never replaced (a failure from a second process, or a second
        good reply, leaves it as it is); a stored failure is replaced by any newer reply.
        Secrets are masked before anything is written.
        """
        now = _now()
        items = list(items)
        if not items:
            return
        with self._tx() as c:
            c.executemany(
                "INSERT INTO replies (key, probe_id, sample, ok, data, created_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET ok=excluded.ok, data=excluded.data,"
                " created_at=excluded.created_at WHERE replies.ok = 0",
                ((k, r.probe_id, r.sample, int(r.ok), secrets.mask(r.model_dump_json()), now) for k, r in items),
            )
            c.executemany(
                "INSERT OR IGNORE INTO run_replies (run_id, key) VALUES (?, ?)",
                ((run_id, k) for k, _ in items),
            )

    def link_replies(self, run_id: str, keys: Iterable[str]) -> None:
        """Attach replies already in the store (e.g. from another run) to ``run_id``."""
        with self._tx() as c:
            c.executemany("INSERT OR IGNORE INTO run_replies (run_id, key) VALUES (?, ?)",
                          ((run_id, k) for k in keys))

    def get_reply(self, key: str) -> Response | None:
        rows = self._query("SELECT data FROM replies WHERE key = ?", (key,))
        return Response.model_validate_json(rows[0][0]) if rows else None

    def reply_status(self, keys: Iterable[str]) -> dict[str, bool]:
        """``key -> ok`` for the keys that have a stored reply (for resuming a run)."""
        keys = list(keys)
        out: dict[str, bool] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for k, ok in self._query(f"SELECT key, ok FROM replies WHERE key IN ({marks})", tuple(chunk)):
                out[k] = bool(ok)
        return out

    def replies(self, run_id: str) -> list[Response]:
        """The replies of a run, ordered by probe position then sample."""
        rows = self._query(
            "SELECT r.data FROM run_replies rr JOIN replies r ON r.key = rr.key"
            " LEFT JOIN probes p ON p.run_id = rr.run_id AND p.probe_id = r.probe_id"
            " WHERE rr.run_id = ? ORDER BY p.position, r.probe_id, r.sample",
            (run_id,),
        )
        return [Response.model_validate_json(r[0]) for r in rows]

    def replies_frame(self, run_id: str) -> pd.DataFrame:
        """The replies of a run as a DataFrame (one column per :class:`Response` field)."""
        import pandas as pd

        rows = [r.model_dump() for r in self.replies(run_id)]
        return pd.DataFrame.from_records(rows, columns=list(Response.model_fields))

    # ------------------------------------------------------------------ judgments
    def put_judgments(self, run_id: str, judgments: Iterable[Judgment]) -> None:
        """Store judgments (one transaction); a judgment with the same key is replaced."""
        with self._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO judgments (run_id, probe_id, sample, rule_id, judge, judge_version,"
                " data) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    (run_id, j.probe_id, j.sample, j.rule_id, j.judge, j.judge_version, j.model_dump_json())
                    for j in judgments
                ),
            )

    def judgments(self, run_id: str, judge: str | None = None) -> list[Judgment]:
        if judge is None:
            rows = self._query(
                "SELECT data FROM judgments WHERE run_id = ? ORDER BY judge, probe_id, sample, rule_id",
                (run_id,),
            )
        else:
            rows = self._query(
                "SELECT data FROM judgments WHERE run_id = ? AND judge = ? ORDER BY probe_id, sample, rule_id",
                (run_id, judge),
            )
        return [Judgment.model_validate_json(r[0]) for r in rows]

    def cached_judgment(self, judge: str, version: str, reply_hash: str, rule_id: str) -> Judgment | None:
        """A judgment cached for this judge version, reply text hash and rule, if any."""
        rows = self._query(
            "SELECT data FROM judge_cache WHERE judge = ? AND version = ? AND reply_hash = ? AND rule_id = ?",
            (judge, version, reply_hash, rule_id),
        )
        return Judgment.model_validate_json(rows[0][0]) if rows else None

    def cache_judgment(self, judge: str, version: str, reply_hash: str, rule_id: str,
                       judgment: Judgment) -> None:
        """Cache ``judgment`` under (judge, version, reply_hash, rule_id)."""
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO judge_cache (judge, version, reply_hash, rule_id, data)"
                " VALUES (?, ?, ?, ?, ?)",
                (judge, version, reply_hash, rule_id, judgment.model_dump_json()),
            )

    def cached_judgments(self, judge: str, version: str,
                         keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Judgment]:
        """Cached judgments for many ``(reply_hash, rule_id)`` keys of one judge version, in bulk."""
        want = set(keys)
        hashes = sorted({h for h, _ in want})
        out: dict[tuple[str, str], Judgment] = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._query(
                "SELECT reply_hash, rule_id, data FROM judge_cache WHERE judge = ? AND version = ?"
                f" AND reply_hash IN ({marks})", (judge, version, *chunk))
            for h, r, data in rows:
                if (h, r) in want:
                    out[(h, r)] = Judgment.model_validate_json(data)
        return out

    def cache_judgments(self, rows: Iterable[tuple[str, str, str, str, Judgment]]) -> None:
        """Cache many ``(judge, version, reply_hash, rule_id, judgment)`` rows in one transaction."""
        with self._tx() as c:
            c.executemany(
                "INSERT OR REPLACE INTO judge_cache (judge, version, reply_hash, rule_id, data)"
                " VALUES (?, ?, ?, ?, ?)",
                ((j, v, h, r, jm.model_dump_json()) for j, v, h, r, jm in rows),
            )


# ---------------------------------------------------------------------- run directories
def default_store_path(run_dir: str | Path) -> Path:
    """``$HARMSCOPE_STORE``, else ``RUN_DIR/../harmscope.sqlite`` (shared by sibling runs)."""
    env = os.environ.get("HARMSCOPE_STORE")
    if env:
        return Path(env)
    return Path(run_dir).resolve().parent / STORE_FILENAME


def write_run_dir(run_dir: str | Path, run_id: str, store_path: str | Path,
                  manifest: RunManifest | None = None) -> None:
    """Write ``run.json`` (and ``manifest.json`` when given) into ``run_dir``."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    info = {"run_id": run_id, "store": str(Path(store_path).resolve())}
    _atomic_write(d / "run.json", json.dumps(info, indent=2) + "\n")
    if manifest is not None:
        _atomic_write(d / "manifest.json", secrets.mask(manifest.model_dump_json(indent=2)) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def result_run_id(result_path: str | Path) -> str | None:
    """The run id a ``result.json`` was scored from (None if unreadable)."""
    try:
        data = json.loads(Path(result_path).read_text(encoding="utf-8"))
        return str(data["manifest"]["run_id"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError):
        return None


def retire_stale_result(run_dir: str | Path, run_id: str) -> Path | None:
    """Move ``RUN_DIR/result.json`` aside when it was scored from another run than ``run_id``.

    Returns the new path of the stale file (the caller tells the user), or None.
    """
    res = Path(run_dir) / "result.json"
    if not res.is_file():
        return None
    old = result_run_id(res)
    if old == run_id:
        return None
    stale = res.with_name(f"result.stale-{(old or 'unknown')[:12]}.json")
    try:
        os.replace(res, stale)
    except OSError as exc:
        raise HarmscopeError(f"{res}: belongs to another run ({old}) and cannot be moved aside "
                             f"({exc.strerror})") from None
    return stale


@dataclass(frozen=True)
class RunInfo:
    """What ``RUN_DIR/run.json`` says: the run id and the store holding it (an absolute path)."""

    path: Path  # the run.json file
    run_id: str
    store: Path


def read_run_info(run_dir: str | Path) -> RunInfo:
    """Read ``RUN_DIR/run.json`` (the one reader of it). A relative ``store`` is relative to the
    run directory; a missing one is :func:`default_store_path`. A missing or broken file is one
    ``InputError`` line naming it."""
    d = Path(run_dir)
    info_path = d / "run.json"
    if not info_path.is_file():
        raise InputError(f"{info_path}: not a harmscope run directory (run.json missing)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{info_path}: cannot read run.json ({exc.__class__.__name__})") from None
    except (ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"{info_path}: bad run.json (not valid JSON{where})") from None
    if not isinstance(info, dict) or not isinstance(info.get("run_id"), str) or not info["run_id"]:
        raise InputError(f"{info_path}: bad run.json (no 'run_id' string)")
    store = info.get("store")
    if store is not None and not isinstance(store, str):
        raise InputError(f"{info_path}: bad run.json ('store' must be a path string)")
    store_path = Path(store) if store else default_store_path(d)
    if not store_path.is_absolute():
        store_path = d / store_path
    return RunInfo(path=info_path, run_id=info["run_id"], store=store_path)


def open_run(run_dir: str | Path) -> tuple[Store, str]:
    """Open the store of a run directory and return ``(store, run_id)``."""
    info = read_run_info(run_dir)
    if not info.store.is_file():
        raise InputError(f"{info.path}: store {info.store} does not exist")
    store = Store(info.store)
    if not store.has_run(info.run_id):
        raise InputError(f"{info.path}: run {info.run_id} is not in store {info.store}")
    return store, info.run_id


def params_hash(params: dict[str, Any]) -> str:
    """Stable hash of generation parameters (used in reply keys and run ids)."""
    return hashlib.sha256(canonical_json(params).encode("utf-8")).hexdigest()[:16]


@contextmanager
def run_lock(store_path: str | Path, run_id: str) -> Iterator[None]:
    """Hold the run's lock while it runs: a second process on the same run fails at once with
    "run X is already running in process P". The OS drops the lock when a process dies."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
        yield
        return
    folder = Path(f"{Path(store_path).resolve()}.locks")
    path = folder / f"{run_id[:32]}.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise HarmscopeError(f"{path}: cannot create the run lock ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            except OSError:
                pid = "?"
            raise HarmscopeError(f"run {run_id} is already running in process {pid} (lock {path}); "
                                 "wait for it to finish or stop it, then run the same command again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield
        finally:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
