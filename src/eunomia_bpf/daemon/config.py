"""eunomiad's configuration: ``/etc/eunomia/eunomiad.toml`` (or ``--config FILE``), then flags.

Every key is optional::

    listen = ["unix:/run/eunomia/eunomiad.sock", "tcp:127.0.0.1:8527"]
    state_dir = "/var/lib/eunomia"          # state.db (SQLite) and packages/<sha256>.json
    auth = true                             # false: no bearer tokens; only when every
                                            # listener is a unix socket or loopback TCP
    tokens_file = "/var/lib/eunomia/tokens" # default: <state_dir>/tokens
    trusted_keys = "/etc/eunomia/trusted-keys"
    require_signed = false
    stop_timeout = 5.0                      # seconds from SIGTERM to SIGKILL of a worker

    [tls]                                   # TCP listeners only; see daemon/tls.py
    cert = "/etc/eunomia/tls/server.crt"
    key = "/etc/eunomia/tls/server.key"
    client_ca = "/etc/eunomia/tls/clients-ca.crt"   # optional: mutual TLS

    [limits]
    max_package_size = 67108864             # bytes of one package
    max_programs = 64                       # programs starting, running or paused at once
    max_body = 90000000                     # bytes of one request body (base64 is 4/3)
    event_buffer = 10000                    # recent events kept per program for cursors
    log_lines = 200                         # worker stderr lines kept per program

Relative paths in the file are relative to the file's directory.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import EunomiaError
from ..package import MAX_PACKAGE_SIZE

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_LISTEN",
    "ConfigError",
    "DaemonConfig",
    "Limits",
    "Listen",
    "load_config",
    "parse_listen",
]

DEFAULT_CONFIG = Path("/etc/eunomia/eunomiad.toml")
DEFAULT_LISTEN = "unix:/run/eunomia/eunomiad.sock"
DEFAULT_STATE_DIR = Path("/var/lib/eunomia")
DEFAULT_TRUSTED_KEYS = Path("/etc/eunomia/trusted-keys")


class ConfigError(EunomiaError):
    """The daemon's configuration file or flags are malformed."""


@dataclass(frozen=True)
class Listen:
    """One listener: ``unix:PATH`` or ``tcp:HOST:PORT`` (``tcp:[::1]:PORT`` for IPv6)."""

    kind: str  # "unix" | "tcp"
    path: Path | None = None
    host: str = ""
    port: int = 0

    @property
    def loopback(self) -> bool:
        """A unix socket, or TCP on a loopback address: reachable from this host only."""
        if self.kind == "unix":
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp:{host}:{self.port}"


def parse_listen(text: str, *, base: Path | None = None) -> Listen:
    kind, sep, rest = text.partition(":")
    if kind == "unix" and sep and rest:
        path = Path(rest).expanduser()
        return Listen("unix", path=(base / path) if base and not path.is_absolute() else path)
    if kind == "tcp" and sep:
        host, sep, port = rest.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if sep and host and port.isdigit() and int(port) < 65536:
            return Listen("tcp", host=host, port=int(port))
    raise ConfigError(f"read config: listen address {text!r}: expected unix:PATH or "
                      "tcp:HOST:PORT")


@dataclass(frozen=True)
class Limits:
    max_package_size: int = MAX_PACKAGE_SIZE
    max_programs: int = 64
    max_body: int = MAX_PACKAGE_SIZE * 4 // 3 + 1024 * 1024
    event_buffer: int = 10000
    log_lines: int = 200


@dataclass(frozen=True)
class DaemonConfig:
    listen: tuple[Listen, ...] = (parse_listen(DEFAULT_LISTEN),)
    state_dir: Path = DEFAULT_STATE_DIR
    auth: bool = True
    tokens_file: Path | None = None  # None: <state_dir>/tokens
    trusted_keys: Path = DEFAULT_TRUSTED_KEYS
    require_signed: bool = False
    tls: Mapping[str, Any] = field(default_factory=dict)  # cert, key, client_ca
    stop_timeout: float = 5.0
    limits: Limits = Limits()

    @property
    def tokens_path(self) -> Path:
        return self.tokens_file or self.state_dir / "tokens"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "state.db"

    def check(self) -> DaemonConfig:
        """Refuse combinations that would be unsafe; returns self."""
        if not self.listen:
            raise ConfigError("read config: no listen address")
        if not self.auth:
            open_to = [str(x) for x in self.listen if not x.loopback]
            if open_to:
                raise ConfigError(
                    f"read config: auth = false is allowed only on unix sockets and loopback "
                    f"TCP (for tests), not on {', '.join(open_to)}")
        for name in ("max_package_size", "max_programs", "max_body", "event_buffer",
                     "log_lines"):
            if getattr(self.limits, name) <= 0:
                raise ConfigError(f"read config: limits.{name} must be positive")
        if self.stop_timeout <= 0:
            raise ConfigError("read config: stop_timeout must be positive")
        return self


_TOP = {"listen", "state_dir", "auth", "tokens_file", "trusted_keys", "require_signed",
        "tls", "stop_timeout", "limits"}
_LIMITS = {f for f in Limits.__dataclass_fields__}


_KINDS = {int: "an integer", float: "a number", str: "a string", bool: "a boolean",
          list: "a list", dict: "a table"}


def _typed(where: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        kinds = (kind,) if isinstance(kind, type) else kind
        names = " or ".join(_KINDS.get(k, k.__name__) for k in kinds)
        raise ConfigError(f"read config: {where} must be {names}, not {value!r}")
    return value


def config_from_mapping(doc: Mapping[str, Any], *, base: Path | None = None) -> DaemonConfig:
    """A config from a parsed TOML document (paths relative to ``base``)."""
    unknown = set(doc) - _TOP
    if unknown:
        raise ConfigError(f"read config: unknown key(s) {', '.join(sorted(unknown))}")

    def path(key: str) -> Path:
        p = Path(_typed(key, doc[key], str)).expanduser()
        return base / p if base and not p.is_absolute() else p

    kw: dict[str, Any] = {}
    if "listen" in doc:
        raw = doc["listen"]
        items = [raw] if isinstance(raw, str) else _typed("listen", raw, list)
        kw["listen"] = tuple(parse_listen(_typed("listen", x, str), base=base) for x in items)
    for key in ("state_dir", "tokens_file", "trusted_keys"):
        if key in doc:
            kw[key] = path(key)
    for key in ("auth", "require_signed"):
        if key in doc:
            kw[key] = _typed(key, doc[key], bool)
    if "stop_timeout" in doc:
        kw["stop_timeout"] = float(_typed("stop_timeout", doc["stop_timeout"], (int, float)))
    if "tls" in doc:
        tls = dict(_typed("tls", doc["tls"], dict))
        for key in ("cert", "key", "client_ca"):
            if key in tls:
                p = Path(_typed(f"tls.{key}", tls[key], str)).expanduser()
                tls[key] = str(base / p if base and not p.is_absolute() else p)
        kw["tls"] = tls
    if "limits" in doc:
        limits = _typed("limits", doc["limits"], dict)
        bad = set(limits) - _LIMITS
        if bad:
            raise ConfigError(f"read config: unknown key(s) limits.{', limits.'.join(sorted(bad))}")
        kw["limits"] = Limits(**{k: _typed(f"limits.{k}", v, int) for k, v in limits.items()})
    return DaemonConfig(**kw)


def load_config(path: Path | None = None, *, listen: Sequence[str] = (),
                state_dir: Path | None = None, **overrides: Any) -> DaemonConfig:
    """Read ``path`` (default ``/etc/eunomia/eunomiad.toml`` when it exists), then apply
    flags: ``listen`` replaces the file's listeners, ``state_dir`` and any other field
    given in ``overrides`` replace the file's value."""
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    config = DaemonConfig()
    if path is not None:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"read config {path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"read config {path}: {exc}") from None
        try:
            config = config_from_mapping(doc, base=Path(path).resolve().parent)
        except ConfigError as exc:
            raise _naming(exc, path) from None
    if listen:
        config = replace(config, listen=tuple(parse_listen(x) for x in listen))
    if state_dir is not None:
        config = replace(config, state_dir=state_dir)
    config = replace(config, **{k: v for k, v in overrides.items() if v is not None})
    try:
        return config.check()
    except ConfigError as exc:
        raise (_naming(exc, path) if path is not None else exc) from None


def _naming(exc: ConfigError, path: Path) -> ConfigError:
    return ConfigError(str(exc).replace("read config", f"read config {path}", 1))
