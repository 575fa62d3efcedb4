"""``eunomiad install-service``: run eunomiad under systemd.

Writes ``/etc/systemd/system/eunomiad.service`` (the daemon of this installation:
``PREFIX/bin/eunomiad serve --config /etc/eunomia/eunomiad.toml``) and, when there is
none yet, a commented ``/etc/eunomia/eunomiad.toml``; then says how to start it. It never
runs systemctl itself: enabling a root-level service is the administrator's call.

``packaging/eunomiad.service`` in the repository is :func:`render_unit` for the prefix
``/opt/eunomia`` (a test keeps the two the same).

The unit keeps what loading eBPF needs — CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN (XDP/tc),
CAP_SYS_ADMIN (some program types, bpffs, perf events of other users), CAP_SYS_RESOURCE
(memlock on older kernels) — and takes away what it does not: other capabilities, new
privileges, writes outside its state, runtime and /sys (bpffs pinning), other address
families than unix/IP/netlink (netlink attaches XDP and tc).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

__all__ = ["CONFIG_PATH", "DEFAULT_CONFIG_TEXT", "UNIT_PATH", "Installed",
           "install_service", "install_service_command", "render_unit"]

UNIT_PATH = Path("/etc/systemd/system/eunomiad.service")
CONFIG_PATH = Path("/etc/eunomia/eunomiad.toml")
CAPABILITIES = "CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_RESOURCE"

_UNIT = """\
[Unit]
Description=eunomiad: eBPF programs as a service (eunomia-bpf)
Documentation=https://github.com/eunomia-bpf/eunomia-bpf
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={eunomiad} serve --config {config}
Restart=on-failure
RestartSec=2s
# SIGTERM to the daemon, which stops every program and its worker; then SIGKILL to all
KillMode=mixed
TimeoutStopSec=30s
# /var/lib/eunomia (state.db, packages, tokens) and /run/eunomia (the API socket)
StateDirectory=eunomia
StateDirectoryMode=0700
RuntimeDirectory=eunomia
RuntimeDirectoryMode=0755
UMask=0077
LimitMEMLOCK=infinity

# eBPF needs these capabilities, and nothing else root could do
CapabilityBoundingSet={caps}
AmbientCapabilities={caps}
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
# not set, on purpose: ProtectKernelTunables (bpffs pinning under /sys/fs/bpf),
# ProtectControlGroups (cgroup programs attach to cgroup directories),
# MemoryDenyWriteExecute (ctypes callbacks need executable trampolines)

[Install]
WantedBy=multi-user.target
"""

DEFAULT_CONFIG_TEXT = """\
# eunomiad's configuration (written by `eunomiad install-service`; see docs/daemon-api.md).
# Every key is optional; the values shown are the defaults.

# The API listens on a unix socket only root can reach. To serve other hosts, add a TCP
# listener, and give it TLS below:
#   listen = ["unix:/run/eunomia/eunomiad.sock", "tcp:0.0.0.0:8527"]
listen = ["unix:/run/eunomia/eunomiad.sock"]

# state.db (the programs that should run), packages by digest, and the bearer tokens
# (created at the first start: `journalctl -u eunomiad` shows the first one, once).
state_dir = "/var/lib/eunomia"

# Refuse packages not signed by a key in trusted_keys (`ecli keygen`, `ecli sign`).
trusted_keys = "/etc/eunomia/trusted-keys"
require_signed = false

# Seconds from SIGTERM to SIGKILL of a program's worker.
stop_timeout = 5.0

# [tls]                                            # TCP listeners only
# cert = "/etc/eunomia/tls/server.crt"
# key = "/etc/eunomia/tls/server.key"
# client_ca = "/etc/eunomia/tls/clients-ca.crt"    # set it to require client certificates

# [limits]
# max_package_size = 67108864
# max_programs = 64
# event_buffer = 10000                             # recent events kept per program
# log_lines = 200
"""


def render_unit(prefix: Path, *, config: Path = CONFIG_PATH) -> str:
    """The systemd unit running ``PREFIX/bin/eunomiad`` with ``config``."""
    return _UNIT.format(eunomiad=prefix / "bin" / "eunomiad", config=config,
                        caps=CAPABILITIES)


@dataclass(frozen=True)
class Installed:
    """What ``install_service`` did: each path written (or kept) and how."""

    files: list[tuple[Path, str]]  # (path, "written" | "updated" | "unchanged" | "kept")
    eunomiad: Path


def _under(root: Path | None, path: Path) -> Path:
    return path if root is None else root / path.relative_to("/")


def install_service(*, prefix: Path | None = None, root: Path | None = None) -> Installed:
    """Write the unit (replacing an older one of ours) and the config (only if absent).
    ``root`` is a staging directory standing for ``/`` (for packaging and tests)."""
    prefix = Path(prefix or sys.prefix).absolute()
    files: list[tuple[Path, str]] = []
    unit, config = _under(root, UNIT_PATH), _under(root, CONFIG_PATH)
    text = render_unit(prefix)
    try:
        before = unit.read_text() if unit.is_file() else None
        if before != text:
            unit.parent.mkdir(parents=True, exist_ok=True)
            unit.write_text(text)
        unit.chmod(0o644)
        files.append((unit, "written" if before is None else
                      "unchanged" if before == text else "updated"))
        if config.exists():
            files.append((config, "kept"))
        else:
            config.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            config.write_text(DEFAULT_CONFIG_TEXT)
            config.chmod(0o644)
            files.append((config, "written"))
    except OSError as exc:
        from ..errors import EunomiaError

        raise EunomiaError(f"install service: {exc.strerror or exc}: "
                           f"{exc.filename or unit.parent}") from None
    return Installed(files, prefix / "bin" / "eunomiad")


@click.command("install-service")
@click.option("--prefix", type=click.Path(file_okay=False, path_type=Path),
              help="The installation whose bin/eunomiad the unit runs "
                   "[default: this Python environment].")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Write under this directory instead of / (packaging, tests).")
@click.option("--dry-run", is_flag=True, help="Print the unit and the default config; "
              "write nothing.")
def install_service_command(prefix: Path | None, root: Path | None, dry_run: bool) -> None:
    """Install eunomiad as a systemd service: the unit file and a default config."""
    echo: Callable[..., None] = click.echo
    if dry_run:
        unit_text = render_unit(Path(prefix or sys.prefix).absolute())
        echo(f"# {_under(root, UNIT_PATH)}\n{unit_text}")
        echo(f"# {_under(root, CONFIG_PATH)} (written only if absent)\n{DEFAULT_CONFIG_TEXT}",
             nl=False)
        return
    done = install_service(prefix=prefix, root=root)
    for path, how in done.files:
        echo(f"eunomiad: {how} {path}")
    if not done.eunomiad.exists():
        echo(f"eunomiad: warning: {done.eunomiad} does not exist (wrong --prefix?)", err=True)
    if root is None:
        echo("eunomiad: now run:  systemctl daemon-reload && systemctl enable --now eunomiad\n"
             "eunomiad: its first start creates an admin token and shows it once in "
             "`journalctl -u eunomiad`; more with `eunomiad token create NAME`")
