"""Turn what the user typed (path, ``-``, URL, bare name) into package bytes.

Search order for a bare name: ``./NAME``, ``./NAME.package.json``, each directory of
``$EUNOMIA_PATH``, ``~/.eunomia-bpf/packages/``, the modules installed by ``ebpm``
(verified against their sha256), then the packages bundled with eunomia-bpf.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import ResolveError
from .package import MAX_PACKAGE_SIZE

__all__ = ["Resolved", "bundled_packages", "eunomia_home", "resolve", "search_path"]

_SUFFIXES = ("", ".package.json", ".json", ".package.yaml", ".yaml")
URL_TIMEOUT = 30.0

#: progress(received_bytes, total_bytes_or_None) while a URL downloads
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class Resolved:
    data: bytes
    origin: str  # where it came from, for messages


def bundled_dir() -> Path:
    return Path(__file__).resolve().parent / "packages"


def bundled_packages() -> list[str]:
    return sorted(p.name.removesuffix(".package.json")
                  for p in bundled_dir().glob("*.package.json"))


def eunomia_home() -> Path:
    """``$EUNOMIA_HOME``, by default ``~/.eunomia-bpf``: installed packages and modules."""
    return Path(os.environ.get("EUNOMIA_HOME") or Path.home() / ".eunomia-bpf")


def _store_index() -> Path:
    """ebpm's index of installed modules (only read when it exists: start-up cost)."""
    return eunomia_home() / "store" / "index.json"


def search_path() -> list[Path]:
    dirs = [Path.cwd()]
    dirs += [Path(d) for d in os.environ.get("EUNOMIA_PATH", "").split(os.pathsep) if d]
    dirs.append(eunomia_home() / "packages")
    dirs.append(bundled_dir())
    return dirs


def _read_capped(stream: BinaryIO, origin: str, limit: int) -> bytes:
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ResolveError(f"read {origin}: larger than the limit of {limit} bytes")
    return data


def _read_file(path: Path, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise ResolveError(f"read {path}: larger than the limit of {limit} bytes")
        with path.open("rb") as f:
            return _read_capped(f, str(path), limit)
    except IsADirectoryError:
        raise ResolveError(f"read {path}: is a directory, not a package file") from None
    except OSError as exc:
        raise ResolveError(f"read {path}: {exc.strerror or exc}") from None


def _candidates(name: str) -> Iterator[Path]:
    for d in search_path():
        for suffix in _SUFFIXES:
            yield d / f"{name}{suffix}"


def fetch_url(url: str, *, limit: int = MAX_PACKAGE_SIZE, timeout: float = URL_TIMEOUT,
              progress: Progress | None = None) -> bytes:
    import httpx  # only URL packages pay for the HTTP stack

    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=True) as resp:
            if resp.status_code != 200:
                raise ResolveError(f"fetch {url}: HTTP {resp.status_code} {resp.reason_phrase}")
            total = resp.headers.get("content-length")
            expected = int(total) if total and total.isdigit() else None
            if expected is not None and expected > limit:
                raise ResolveError(f"fetch {url}: {expected} bytes, over the limit of {limit}")
            chunks: list[bytes] = []
            received = 0
            for chunk in resp.iter_bytes():
                received += len(chunk)
                if received > limit:
                    raise ResolveError(f"fetch {url}: larger than the limit of {limit} bytes")
                chunks.append(chunk)
                if progress:
                    progress(received, expected)
            return b"".join(chunks)
    except httpx.TimeoutException:
        raise ResolveError(f"fetch {url}: timed out after {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise ResolveError(f"fetch {url}: {exc or type(exc).__name__}") from None


def resolve(ref: str, *, limit: int = MAX_PACKAGE_SIZE, stdin: BinaryIO | None = None,
            progress: Progress | None = None) -> Resolved:
    """Find the package ``ref`` names and return its bytes."""
    if ref == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return Resolved(_read_capped(stream, "standard input", limit), "standard input")
    if ref.startswith(("http://", "https://")):
        return Resolved(fetch_url(ref, limit=limit, progress=progress), ref)
    if "://" in ref:
        raise ResolveError(f"resolve {ref}: only http:// and https:// URLs are supported")
    path = Path(ref).expanduser()
    if path.is_file() or os.sep in ref or ref.endswith((".json", ".yaml")):
        return Resolved(_read_file(path, limit), str(path))
    for candidate in _candidates(ref):
        if candidate.parent == bundled_dir() and _store_index().is_file():
            from .ebpm.store import read_installed  # modules installed by ebpm come first

            installed = read_installed(ref)
            if installed is not None:
                return Resolved(*installed)
        if candidate.is_file():
            return Resolved(_read_file(candidate, limit), str(candidate))
    known = ", ".join(bundled_packages()) or "none"
    raise ResolveError(
        f"resolve {ref}: no such file or package (looked in ./, $EUNOMIA_PATH, "
        f"~/.eunomia-bpf/packages and the bundled packages: {known})")
