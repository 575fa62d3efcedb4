"""``ebpm.lock``: the exact packages an install chose (pure).

::

    version = 1

    [[package]]
    name = "opensnoop"                        # the name it is installed under
    source = "git+git://host/pub.git"         # git+URL, url+URL or path+/absolute/dir
    version = "0.1.0"                         # "" for a URL
    commit = "3f2c..."                        # git only, else ""
    module = "opensnoop"
    sha256 = "9b1e..."                        # of the package file
    exposed = true                            # installed under `name` for `ebpm run`
    requested_by = ["app"]

Written sorted (by name, then source) with ``tomli-w`` so the same resolution gives the
same bytes.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .manifest import ManifestError

__all__ = ["LOCK_NAME", "LockEntry", "LockError", "dump_lock", "parse_lock", "read_lock"]

LOCK_NAME = "ebpm.lock"
LOCK_VERSION = 1


class LockError(ManifestError):
    """``ebpm.lock`` is malformed."""


@dataclass(frozen=True)
class LockEntry:
    name: str
    source: str
    version: str
    commit: str
    module: str
    sha256: str
    exposed: bool
    requested_by: tuple[str, ...] = ()


_STRINGS = ("name", "source", "version", "commit", "module", "sha256")


def parse_lock(text: str, *, origin: str = LOCK_NAME) -> tuple[LockEntry, ...]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LockError(f"read {origin}: invalid TOML: {exc}") from None
    if doc.get("version") != LOCK_VERSION:
        raise LockError(f"read {origin}: unsupported lock version {doc.get('version')!r} "
                        f"(expected {LOCK_VERSION})")
    entries = []
    for i, raw in enumerate(doc.get("package", [])):
        where = f"read {origin}: [[package]] #{i + 1}"
        if not isinstance(raw, dict):
            raise LockError(f"{where} is not a table")
        for key in _STRINGS:
            if not isinstance(raw.get(key), str):
                raise LockError(f"{where}: {key} must be a string")
        if not isinstance(raw.get("exposed", False), bool):
            raise LockError(f"{where}: exposed must be a boolean")
        by = raw.get("requested_by", [])
        if not isinstance(by, list) or not all(isinstance(b, str) for b in by):
            raise LockError(f"{where}: requested_by must be an array of strings")
        entries.append(LockEntry(raw["name"], raw["source"], raw["version"], raw["commit"],
                                 raw["module"], raw["sha256"],
                                 exposed=raw.get("exposed", False), requested_by=tuple(by)))
    return tuple(entries)


def read_lock(path: Path) -> tuple[LockEntry, ...] | None:
    """The entries of the lock at ``path``, or None when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return parse_lock(text, origin=str(path))


def dump_lock(entries: tuple[LockEntry, ...] | list[LockEntry]) -> str:
    import tomli_w

    packages: list[dict[str, Any]] = []
    for entry in sorted(entries, key=lambda e: (e.name, e.source)):
        row = asdict(entry)
        row["requested_by"] = sorted(entry.requested_by)
        packages.append(row)
    header = "# written by ebpm: exact sources and sha256 of every dependency\n"
    return header + tomli_w.dumps({"version": LOCK_VERSION, "package": packages})
