"""``eunomiad install-service``: the unit and the default config, written under a staging
root (systemctl is never run by tests)."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from click.testing import CliRunner

from eunomia_bpf.daemon.config import config_from_mapping
from eunomia_bpf.daemon.install import (
    DEFAULT_CONFIG_TEXT,
    install_service,
    install_service_command,
    render_unit,
)

REPO = Path(__file__).resolve().parents[2]


def _directives(unit: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in unit.splitlines()
             if "=" in line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def test_unit_runs_this_installation_with_only_the_capabilities_ebpf_needs() -> None:
    unit = _directives(render_unit(Path("/opt/x")))
    assert unit["ExecStart"] == "/opt/x/bin/eunomiad serve --config /etc/eunomia/eunomiad.toml"
    assert unit["Restart"] == "on-failure"
    caps = {"CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"}
    assert set(unit["CapabilityBoundingSet"].split()) == caps
    assert set(unit["AmbientCapabilities"].split()) == caps
    assert unit["StateDirectory"] == unit["RuntimeDirectory"] == "eunomia"
    assert unit["NoNewPrivileges"] == "yes"
    assert "AF_NETLINK" in unit["RestrictAddressFamilies"]  # XDP and tc attach by netlink
    assert "MemoryDenyWriteExecute" not in unit             # ctypes callbacks need it off


def test_packaging_unit_is_the_rendered_one() -> None:
    shipped = (REPO / "packaging" / "eunomiad.service").read_text()
    assert shipped == render_unit(Path("/opt/eunomia"))


def test_default_config_is_one_the_daemon_reads_with_its_defaults() -> None:
    config = config_from_mapping(tomllib.loads(DEFAULT_CONFIG_TEXT)).check()
    assert [str(x) for x in config.listen] == ["unix:/run/eunomia/eunomiad.sock"]
    assert config.state_dir == Path("/var/lib/eunomia")  # systemd's StateDirectory=eunomia
    assert config.auth and not config.require_signed


def test_install_writes_the_unit_and_keeps_an_existing_config(tmp_path: Path) -> None:
    done = install_service(prefix=Path("/opt/x"), root=tmp_path)
    unit = tmp_path / "etc/systemd/system/eunomiad.service"
    config = tmp_path / "etc/eunomia/eunomiad.toml"
    assert done.files == [(unit, "written"), (config, "written")]
    assert unit.read_text() == render_unit(Path("/opt/x"))
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert config.read_text() == DEFAULT_CONFIG_TEXT
    config.write_text("require_signed = true\n")  # the administrator's own
    done = install_service(prefix=Path("/opt/y"), root=tmp_path)
    assert done.files == [(unit, "updated"), (config, "kept")]
    assert "/opt/y/bin/eunomiad serve" in unit.read_text()
    assert config.read_text() == "require_signed = true\n"


def test_command_says_what_it_did_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    dry = runner.invoke(install_service_command, ["--dry-run", "--prefix", "/opt/x",
                                                  "--root", str(tmp_path)])
    assert dry.exit_code == 0, dry.output
    assert "ExecStart=/opt/x/bin/eunomiad serve" in dry.output
    assert 'listen = ["unix:/run/eunomia/eunomiad.sock"]' in dry.output
    assert not any(tmp_path.iterdir())
    done = runner.invoke(install_service_command, ["--prefix", "/opt/x", "--root",
                                                   str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert f"written {tmp_path}/etc/systemd/system/eunomiad.service" in done.output
    assert "does not exist (wrong --prefix?)" in done.output
