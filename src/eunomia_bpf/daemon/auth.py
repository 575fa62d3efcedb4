"""Bearer tokens for eunomiad: a 0600 JSON file of named, salted token hashes.

Tokens are 32 random bytes (url-safe base64), so a salted SHA-256 is as good as a slow
hash here: there is nothing to guess. The file holds only hashes; a token is shown once,
when it is created. The daemon re-reads the file whenever it changes, so
``eunomiad token revoke NAME`` takes effect on the next request, without a restart.

The file (``version`` 1)::

    {"version": 1, "tokens": [
      {"name": "admin", "salt": "<hex>", "sha256": "<hex of sha256(salt + token)>",
       "created_at": "2025-01-01T00:00:00+00:00", "revoked_at": null}]}

The API (``api.py``) calls ``verify`` for every route but ``GET /health``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._files import write_atomic
from ..errors import EunomiaError

__all__ = ["AuthError", "TokenInfo", "TokenStore"]

_log = logging.getLogger(__name__)
_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_MAX_FILE = 1 << 20


class AuthError(EunomiaError):
    """The tokens file is unsafe or malformed, or a token name is bad or unknown."""


@dataclass(frozen=True)
class TokenInfo:
    """What ``eunomiad token list`` shows: never the token itself."""

    name: str
    created_at: str
    revoked_at: str | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class _Entry:
    info: TokenInfo
    salt: bytes
    digest: bytes


_Entries = list[_Entry]  # `TokenStore.list` hides the builtin inside the class
_Infos = list[TokenInfo]


def _hash(salt: bytes, token: str) -> bytes:
    return hashlib.sha256(salt + token.encode()).digest()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


class TokenStore:
    """The tokens of one daemon, in one file. Thread-safe; cheap to call ``verify``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._entries: _Entries = []

    # -- the daemon's side -------------------------------------------------------------

    @classmethod
    def ensure_initial(cls, path: str | os.PathLike[str]) -> str | None:
        """At the daemon's first start: create the tokens file with one token named
        ``admin`` and return that token (the caller shows it once, with the path).
        Returns None when the file exists already (after checking it is safe to use)."""
        store = cls(path)
        with store._write_lock():
            if store.path.exists():
                store._load()
                return None
            return store._create_locked("admin", [])

    def verify(self, token: str) -> bool:
        """Whether ``token`` is one of the file's tokens and not revoked."""
        if not token:
            return False
        try:
            entries = self._current()
        except AuthError as exc:
            _log.warning("refusing every token: %s", exc)
            return False  # an unreadable or unsafe file lets nobody in
        ok = False
        for entry in entries:  # compare with every entry: no early exit to time
            if hmac.compare_digest(_hash(entry.salt, token), entry.digest):
                ok = ok or not entry.info.revoked
        return ok

    # -- the administrator's side (eunomiad token ...) ---------------------------------

    def create(self, name: str) -> str:
        """Add a token called ``name``; returns the token, which is not stored anywhere.
        A revoked token's name may be used again."""
        with self._write_lock():
            entries = self._load() if self.path.exists() else []
            return self._create_locked(name, entries)

    def revoke(self, name: str) -> None:
        """Revoke the token called ``name``; the daemon refuses it from the next request."""
        with self._write_lock():
            entries = self._load()
            for i, entry in enumerate(entries):
                if entry.info.name == name:
                    if entry.info.revoked:
                        raise AuthError(f"revoke token {name}: already revoked")
                    info = TokenInfo(name, entry.info.created_at, _now())
                    entries[i] = _Entry(info, entry.salt, entry.digest)
                    self._save(entries)
                    return
            raise AuthError(f"revoke token {name}: no such token in {self.path}")

    def list(self) -> _Infos:
        """Every token's name and dates, revoked ones included."""
        return [entry.info for entry in self._current()]

    # -- the file ----------------------------------------------------------------------

    def _create_locked(self, name: str, entries: _Entries) -> str:
        if not _NAME.match(name):
            raise AuthError(f"create token {name!r}: a name is 1-64 letters, digits or "
                            "'_.@-', starting with a letter or digit")
        if any(e.info.name == name and not e.info.revoked for e in entries):
            raise AuthError(f"create token {name}: a token of that name exists "
                            "(revoke it first)")
        token = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        entries = [e for e in entries if e.info.name != name]
        entries.append(_Entry(TokenInfo(name, _now(), None), salt, _hash(salt, token)))
        self._save(entries)
        return token

    def _current(self) -> _Entries:
        with self._lock:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                raise AuthError(f"read tokens {self.path}: no such file (create one with "
                                "`eunomiad token create NAME`)") from None
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if stamp != self._stamp:
                self._load()
            return list(self._entries)

    def _load(self) -> _Entries:
        """Read and check the file (it must be ours and private); cache its entries."""
        where = f"read tokens {self.path}"
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise AuthError(f"{where}: no such file") from None
        except OSError as exc:
            raise AuthError(f"{where}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            _check_private(st, where)
            raw = f.read(_MAX_FILE + 1)
        if len(raw) > _MAX_FILE:
            raise AuthError(f"{where}: larger than {_MAX_FILE} bytes")
        entries = _parse(raw, where)
        self._entries = entries
        self._stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return list(entries)

    def _save(self, entries: _Entries) -> None:
        """Write atomically (a private temporary file renamed over the old one), so the
        daemon never reads half a file."""
        doc = {"version": _VERSION, "tokens": [{
            "name": e.info.name, "salt": e.salt.hex(), "sha256": e.digest.hex(),
            "created_at": e.info.created_at, "revoked_at": e.info.revoked_at,
        } for e in entries]}
        write_atomic(self.path, (json.dumps(doc, indent=2) + "\n").encode())  # 0600
        self._entries = list(entries)
        self._stamp = None  # the next verify re-reads what is really on disk

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[None]:
        """Serialise writers (two `eunomiad token` commands) with a lock file beside the
        tokens file; readers need no lock since writes are atomic renames."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path.with_name(f".{self.path.name}.lock"),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuthError(f"write tokens {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with self._lock:
                yield
        finally:
            os.close(fd)


def _check_private(st: os.stat_result, where: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise AuthError(f"{where}: not a regular file")
    if st.st_mode & 0o077:
        raise AuthError(f"{where}: readable or writable by group/others (mode "
                        f"{stat.S_IMODE(st.st_mode):04o}); it holds credentials: "
                        "chmod 600 it")
    if st.st_uid != os.geteuid():
        raise AuthError(f"{where}: owned by uid {st.st_uid}, not by this user "
                        f"(uid {os.geteuid()})")


def _parse(raw: bytes, where: str) -> _Entries:
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthError(f"{where}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise AuthError(f"{where}: not a version {_VERSION} tokens file")
    tokens = doc.get("tokens")
    if not isinstance(tokens, list):
        raise AuthError(f"{where}: 'tokens' is not a list")
    entries: _Entries = []
    seen: set[str] = set()
    for i, item in enumerate(tokens):
        try:
            name, created, revoked = item["name"], item["created_at"], item["revoked_at"]
            salt, digest = bytes.fromhex(item["salt"]), bytes.fromhex(item["sha256"])
            if not (isinstance(name, str) and isinstance(created, str)
                    and (revoked is None or isinstance(revoked, str))
                    and len(digest) == hashlib.sha256().digest_size and salt):
                raise TypeError
        except (TypeError, KeyError, ValueError):
            raise AuthError(f"{where}: token #{i} is malformed") from None
        if name in seen:
            raise AuthError(f"{where}: token name {name} appears twice")
        seen.add(name)
        entries.append(_Entry(TokenInfo(name, created, revoked), salt, digest))
    return entries
