"""The content-addressed store of installed packages.

Layout under ``$EUNOMIA_HOME`` (default ``~/.eunomia-bpf``)::

    store/sha256/<hex digest>.package.json   the package bytes, named by their sha256
    store/index.json                         {"modules": {NAME: {"sha256", "source", "version"}}}
    store/.lock                              flock(2)ed while anything here is written
    cache/git/<hash of URL>.git              bare clones of git sources

Blobs are written to a temporary file in the same directory and renamed into place, so
an interrupted download never leaves a half-written package; the index is replaced the
same way under the lock, so concurrent ``ebpm install`` runs do not corrupt it. Every
read (install, ``ebpm run``, ``ecli run NAME``) checks the blob against its digest.

Imported by :mod:`eunomia_bpf.resolve` for bare names: keep it light (stdlib only).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import write_atomic
from ..errors import ResolveError
from ..resolve import eunomia_home

__all__ = ["Installed", "Store", "eunomia_home", "read_installed", "read_verified", "sha256_hex"]




def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_verified(path: Path, digest: str, *, remedy: str) -> bytes:
    """The bytes of ``path``, refused unless their sha256 is ``digest`` (a missing file
    raises FileNotFoundError, for the caller to say what that means)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ResolveError(f"read {path}: {exc.strerror or exc}") from None
    if sha256_hex(data) != digest:
        raise ResolveError(f"read {path}: sha256 mismatch: {remedy}")
    return data


@dataclass(frozen=True)
class Installed:
    name: str
    sha256: str
    source: str
    version: str


class Store:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home if home is not None else eunomia_home()
        self.root = self.home / "store"
        self.blobs = self.root / "sha256"
        self.index_path = self.root / "index.json"
        self.git_cache = self.home / "cache" / "git"

    def blob_path(self, digest: str) -> Path:
        return self.blobs / f"{digest}.package.json"

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.blobs.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._sweep_temporaries()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _sweep_temporaries(self) -> None:
        # every write here happens under the lock, so a temporary file seen by the lock's
        # holder belongs to a writer that died (killed mid-download): never a live one
        for directory in (self.root, self.blobs):
            for tmp in directory.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def read_blob(self, digest: str) -> bytes | None:
        """The verified bytes of ``digest``, or None when the store lacks them."""
        try:
            return read_verified(self.blob_path(digest), digest, remedy=(
                "the store is corrupt (remove the file and run `ebpm install` again)"))
        except FileNotFoundError:
            return None

    def add_blob(self, data: bytes, digest: str) -> Path:
        """Store ``data`` under ``digest`` (which it must match); call under :meth:`locked`."""
        if sha256_hex(data) != digest:
            raise ResolveError(f"store {digest[:12]}: sha256 mismatch")
        path = self.blob_path(digest)
        if not path.exists():
            write_atomic(path, data)
        return path

    def index(self) -> dict[str, Installed]:
        try:
            raw = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ResolveError(f"read {self.index_path}: {exc}") from None
        modules: Mapping[str, Any] = raw.get("modules", {}) if isinstance(raw, dict) else {}
        return {name: Installed(name, str(e.get("sha256", "")), str(e.get("source", "")),
                                str(e.get("version", "")))
                for name, e in modules.items() if isinstance(e, dict)}

    def write_index(self, modules: Mapping[str, Installed]) -> None:
        """Replace the index; call under :meth:`locked`."""
        doc = {"modules": {name: {"sha256": m.sha256, "source": m.source, "version": m.version}
                           for name, m in sorted(modules.items())}}
        write_atomic(self.index_path, (json.dumps(doc, indent=2) + "\n").encode())

    def installed(self, name: str) -> tuple[bytes, str] | None:
        """The verified bytes of the installed module ``name`` and where they are."""
        entry = self.index().get(name)
        if entry is None:
            return None
        data = self.read_blob(entry.sha256)
        if data is None:
            raise ResolveError(f"resolve {name}: installed, but its package "
                               f"{self.blob_path(entry.sha256)} is missing from the store")
        return data, str(self.blob_path(entry.sha256))


def read_installed(name: str) -> tuple[bytes, str] | None:
    """For ``ecli run NAME``: the verified bytes of an installed module and their path."""
    store = Store()
    if not store.index_path.is_file():
        return None
    return store.installed(name)
