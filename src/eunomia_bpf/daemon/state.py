"""The daemon's desired state: which programs should run, from which package, with which
arguments. SQLite (WAL, ``synchronous=FULL``) in ``<state_dir>/state.db``; package bytes
beside it in ``<state_dir>/packages/<sha256>.json``, each written to a temporary file,
fsynced and renamed, so that a crash at any moment leaves either no blob or a whole one.

A blob is written before the row that names it and removed after the last row naming it
is gone; :meth:`StateStore.collect_garbage` removes blobs a crash left without a row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._files import write_atomic
from ..errors import EunomiaError

__all__ = ["DesiredProgram", "StateError", "StateStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS programs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    args       TEXT NOT NULL,          -- JSON list of strings
    desired    TEXT NOT NULL CHECK (desired IN ('running', 'paused')),
    created_at REAL NOT NULL
);
"""
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class StateError(EunomiaError):
    """The state directory or database cannot be used."""


@dataclass(frozen=True)
class DesiredProgram:
    id: str
    name: str
    digest: str
    args: tuple[str, ...]
    desired: str  # "running" | "paused"
    created_at: float


class StateStore:
    """Desired programs and package blobs. Use from one thread (the daemon's event loop)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.blob_dir = state_dir / "packages"
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.blob_dir.mkdir(mode=0o700, exist_ok=True)
            self._db = sqlite3.connect(state_dir / "state.db", isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"open state {state_dir}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    # -- programs ------------------------------------------------------------------
    @staticmethod
    def new_id() -> str:
        return f"p-{secrets.token_hex(6)}"

    def add(self, name: str, digest: str, args: list[str], desired: str = "running",
            program_id: str | None = None) -> DesiredProgram:
        row = DesiredProgram(program_id or self.new_id(), name, digest, tuple(args), desired,
                             time.time())
        with self._write("add program"):
            self._db.execute("INSERT INTO programs VALUES (?, ?, ?, ?, ?, ?)",
                             (row.id, row.name, row.digest, json.dumps(list(row.args)),
                              row.desired, row.created_at))
        return row

    def set_desired(self, program_id: str, desired: str) -> None:
        with self._write("update program"):
            self._db.execute("UPDATE programs SET desired = ? WHERE id = ?",
                             (desired, program_id))

    def remove(self, program_id: str) -> None:
        """Forget a program, and its package blob when no other program uses it."""
        row = self.get(program_id)
        with self._write("remove program"):
            self._db.execute("DELETE FROM programs WHERE id = ?", (program_id,))
        if row is not None and not self._digest_used(row.digest):
            with contextlib.suppress(FileNotFoundError):
                self._blob_path(row.digest).unlink()

    def get(self, program_id: str) -> DesiredProgram | None:
        cur = self._db.execute("SELECT * FROM programs WHERE id = ?", (program_id,))
        found = cur.fetchone()
        return _row(found) if found else None

    def programs(self) -> list[DesiredProgram]:
        cur = self._db.execute("SELECT * FROM programs ORDER BY created_at, id")
        return [_row(r) for r in cur.fetchall()]

    # -- package blobs -------------------------------------------------------------
    def put_package(self, data: bytes) -> str:
        """Store package bytes by their sha256; returns the hex digest."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._blob_path(digest)
        if path.is_file():
            return digest
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise StateError(f"store package {digest[:12]}: {exc.strerror or exc}") from None
        return digest

    def package_path(self, digest: str) -> Path:
        """Where the blob is; StateError when it is missing or does not match its digest."""
        path = self._blob_path(digest)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StateError(f"read package {digest[:12]}: {exc.strerror or exc}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StateError(f"read package {digest[:12]}: the stored bytes are corrupt")
        return path

    def collect_garbage(self) -> int:
        """Remove blobs and temporary files no program refers to; returns how many."""
        used = {p.digest for p in self.programs()}
        removed = 0
        for path in self.blob_dir.iterdir():
            digest = path.name.removesuffix(".json")
            if digest not in used:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed += 1
        return removed

    def _blob_path(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise StateError(f"read package {digest!r}: not a sha256 digest")
        return self.blob_dir / f"{digest}.json"

    def _digest_used(self, digest: str) -> bool:
        cur = self._db.execute("SELECT 1 FROM programs WHERE digest = ? LIMIT 1", (digest,))
        return cur.fetchone() is not None

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[None]:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                yield
        except sqlite3.Error as exc:
            raise StateError(f"{what}: {exc}") from None


def _row(r: tuple[str, str, str, str, str, float]) -> DesiredProgram:
    return DesiredProgram(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4], r[5])
