"""TLS and mutual TLS for eunomiad's TCP listener: checked uvicorn SSL settings.

The daemon config's ``[tls]`` section names three PEM files::

    [tls]
    cert = "/etc/eunomia/tls/server.crt"       # the server's certificate (chain)
    key = "/etc/eunomia/tls/server.key"        # its private key (must not be group/other readable)
    client_ca = "/etc/eunomia/tls/clients-ca.crt"  # optional: require client certificates

With ``client_ca`` set, a client must present a certificate signed by that CA (mTLS) on
top of its bearer token; without it, the listener is plain TLS. The files are loaded once
here so that a wrong path or a mismatched key is one clear error at start, not a
traceback from inside uvicorn.
"""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import EunomiaError

__all__ = ["TLSError", "tls_from_config", "uvicorn_ssl_kwargs"]


class TLSError(EunomiaError):
    """A TLS certificate, key or CA file is missing, unsafe or does not load."""


def uvicorn_ssl_kwargs(cert: str | os.PathLike[str], key: str | os.PathLike[str],
                       client_ca: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run``: ``ssl_certfile``,
    ``ssl_keyfile`` and, with ``client_ca``, ``ssl_ca_certs`` and
    ``ssl_cert_reqs=ssl.CERT_REQUIRED``. Checks that the files exist, that the key is
    private, and that certificate, key and CA load together."""
    cert_path, key_path = _existing(cert, "certificate"), _existing(key, "key")
    mode = os.stat(key_path).st_mode
    if mode & 0o077:
        raise TLSError(f"load tls key {key_path}: readable or writable by group/others (mode "
                       f"{stat.S_IMODE(mode):04o}); chmod 600 it")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise TLSError(f"load tls certificate {cert_path} with key {key_path}: "
                       f"{_reason(exc)}") from None
    kwargs: dict[str, Any] = {"ssl_certfile": str(cert_path), "ssl_keyfile": str(key_path)}
    if client_ca is not None:
        ca_path = _existing(client_ca, "client CA")
        try:
            context.load_verify_locations(cafile=ca_path)
        except (ssl.SSLError, OSError) as exc:
            raise TLSError(f"load tls client CA {ca_path}: {_reason(exc)}") from None
        kwargs.update(ssl_ca_certs=str(ca_path), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return kwargs


def tls_from_config(section: Mapping[str, Any] | None) -> dict[str, Any]:
    """The uvicorn SSL kwargs for a config's ``[tls]`` table (``cert``, ``key``, optional
    ``client_ca``); an empty dict when there is no such table (plain HTTP)."""
    if not section:
        return {}
    unknown = set(section) - {"cert", "key", "client_ca"}
    if unknown:
        raise TLSError(f"read tls config: unknown key(s) {', '.join(sorted(unknown))} "
                       "(expected cert, key, client_ca)")
    missing = [k for k in ("cert", "key") if not section.get(k)]
    if missing:
        raise TLSError(f"read tls config: {' and '.join(missing)} must be set")
    return uvicorn_ssl_kwargs(section["cert"], section["key"], section.get("client_ca") or None)


def _existing(path: str | os.PathLike[str], what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise TLSError(f"load tls {what} {resolved}: no such file")
    return resolved


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(getattr(exc, "strerror", None) or exc)
