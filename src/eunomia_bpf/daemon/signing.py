"""Package signatures: ed25519 (the ``cryptography`` library) over the package's SHA-256.

Keys are PEM files: ``eunomia.key`` (PKCS#8, unencrypted, mode 0600) and ``eunomia.pub``
(SubjectPublicKeyInfo, readable by ``openssl pkey -pubin``). A key's id is the first 16 hex
digits of the SHA-256 of its 32 raw public-key bytes. A signature, as ``ecli sign`` writes
it to ``PACKAGE.sig`` and as a client sends it to eunomiad::

    {"key_id": "<16 hex>", "algorithm": "ed25519",
     "signature": "<base64 of sign(sha256(package bytes))>"}

The daemon trusts every ``*.pub`` (or ``*.pem``) public key in its trusted-keys directory,
read at each verification, so adding or removing a key needs no restart.

Policy of ``verify_package``: a signature that is present must be well-formed, and when
its key is trusted it must match; with ``require_signed`` the package must carry a
signature by a trusted key. Without ``require_signed``, an unsigned package, or one signed
by a key this daemon does not know, runs as unsigned (None).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EunomiaError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "ALGORITHM",
    "KEY_NAME",
    "PUB_NAME",
    "SignatureError",
    "generate_keypair",
    "key_id",
    "load_trusted_keys",
    "public_key_id",
    "read_signature",
    "sign_package",
    "verify_package",
]

_log = logging.getLogger(__name__)

ALGORITHM = "ed25519"
KEY_NAME = "eunomia.key"
PUB_NAME = "eunomia.pub"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_MAX_KEY_FILE = 64 << 10
_MAX_SIG_FILE = 64 << 10


class SignatureError(EunomiaError):
    """A package's signature is missing (when required), unknown, malformed or wrong; or a
    key file cannot be used. The daemon answers 403 with the message."""


def key_id(public_key: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the 32 raw public-key bytes."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def generate_keypair(directory: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write a new ``eunomia.key`` (0600) and ``eunomia.pub`` into ``directory`` (created
    0700 when missing). Refuses to overwrite an existing key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(directory).expanduser()
    key_path, pub_path = out / KEY_NAME, out / PUB_NAME
    for path in (key_path, pub_path):
        if path.exists():
            raise SignatureError(f"generate key: {path} exists; not overwriting it")
    try:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        pub_path.write_bytes(private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise SignatureError(f"generate key in {out}: {exc.strerror or exc}") from None
    return key_path, pub_path


def sign_package(data: bytes, key_path: str | os.PathLike[str]) -> dict[str, str]:
    """The signature of the package bytes ``data`` with the private key at ``key_path``."""
    private = _load_private(Path(key_path).expanduser())
    signature = private.sign(hashlib.sha256(data).digest())
    return {"key_id": key_id(private.public_key()), "algorithm": ALGORITHM,
            "signature": base64.b64encode(signature).decode()}


def read_signature(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A ``.sig`` file as the dict ``verify_package`` takes (its shape is checked there)."""
    where = f"read signature {path}"
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_SIG_FILE + 1)
    except OSError as exc:
        raise SignatureError(f"{where}: {exc.strerror or exc}") from None
    try:
        if len(raw) > _MAX_SIG_FILE:
            raise ValueError("too large")
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SignatureError(f"{where}: malformed signature ({exc})") from None
    if not isinstance(doc, dict):
        raise SignatureError(f"{where}: malformed signature (not a JSON object)")
    return doc


def verify_package(data: bytes, signature: dict[str, Any] | None,
                   trusted_dir: str | os.PathLike[str] | None,
                   require_signed: bool) -> str | None:
    """Check ``data`` against ``signature`` and the keys in ``trusted_dir``. Returns the id
    of the key that verified it, or None for a package allowed to run unsigned; raises
    ``SignatureError`` with the reason otherwise (see the module's policy)."""
    from cryptography.exceptions import InvalidSignature

    if signature is None:
        if require_signed:
            raise SignatureError("package is not signed and this daemon requires signatures")
        return None
    kid, raw_sig = _parse_signature(signature)
    trusted = load_trusted_keys(trusted_dir) if trusted_dir is not None else {}
    public = trusted.get(kid)
    if public is None:
        if require_signed:
            raise SignatureError(f"signed by unknown key {kid} (not in this daemon's "
                                 "trusted keys)")
        return None
    try:
        public.verify(raw_sig, hashlib.sha256(data).digest())
    except InvalidSignature:
        raise SignatureError(f"signature does not match the package (tampered?); signed by "
                             f"key {kid}") from None
    return kid


def public_key_id(path: str | os.PathLike[str]) -> str:
    """The key id of the ed25519 public key in the PEM file ``path``."""
    return key_id(_load_public(Path(path)))


def load_trusted_keys(directory: str | os.PathLike[str]) -> dict[str, Ed25519PublicKey]:
    """Every ed25519 public key in ``directory`` (``*.pub``, ``*.pem``) by key id. Files
    that are not such keys are skipped with a warning, so that one bad file does not stop
    every signed package; a missing directory trusts nobody."""
    keys: dict[str, Ed25519PublicKey] = {}
    try:
        paths = sorted(p for p in Path(directory).iterdir() if p.suffix in (".pub", ".pem"))
    except FileNotFoundError:
        return keys
    except OSError as exc:
        raise SignatureError(f"read trusted keys {directory}: {exc.strerror or exc}") from None
    for path in paths:
        try:
            public = _load_public(path)
        except SignatureError as exc:
            _log.warning("skipping trusted key: %s", exc)
            continue
        keys[key_id(public)] = public
    return keys


def _parse_signature(signature: Any) -> tuple[str, bytes]:
    bad = "malformed signature"
    if not isinstance(signature, dict):
        raise SignatureError(f"{bad}: expected a JSON object with key_id, algorithm and "
                             "signature")
    algorithm = signature.get("algorithm")
    if algorithm != ALGORITHM:
        raise SignatureError(f"{bad}: algorithm {algorithm!r} is not supported (only "
                             f"{ALGORITHM})")
    kid = signature.get("key_id")
    if not isinstance(kid, str) or not _KEY_ID.match(kid):
        raise SignatureError(f"{bad}: key_id must be 16 lowercase hex digits")
    value = signature.get("signature")
    try:
        raw = base64.b64decode(value if isinstance(value, str) else b"!", validate=True)
    except (ValueError, binascii.Error):
        raise SignatureError(f"{bad}: 'signature' is not base64") from None
    if len(raw) != 64:
        raise SignatureError(f"{bad}: an ed25519 signature is 64 bytes, not {len(raw)}")
    return kid, raw


def _load_public(path: Path) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = _load_pem(path, "public key", load_pem_public_key)
    if not isinstance(key, Ed25519PublicKey):
        raise SignatureError(f"read public key {path}: not an ed25519 public key")
    return key


def _load_private(path: Path) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = _load_pem(path, "private key", lambda pem: load_pem_private_key(pem, password=None))
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"read private key {path}: not an ed25519 private key")
    return key


def _load_pem(path: Path, what: str, load: Callable[[bytes], object]) -> object:
    where = f"read {what} {path}"
    try:
        with open(path, "rb") as f:
            return load(f.read(_MAX_KEY_FILE))
    except OSError as exc:
        raise SignatureError(f"{where}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{where}: not an unencrypted PEM {what} ({exc})") from None
