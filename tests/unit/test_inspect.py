"""``ecli inspect``: what a package holds, readable in a log and as JSON."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from eunomia_bpf.cli.ecli import ecli
from eunomia_bpf.resolve import bundled_dir, bundled_packages
from tests.support import run_ecli, vector_path


def _inspect(*args: str) -> str:
    result = CliRunner().invoke(ecli, ["inspect", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _inspect_json(ref: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(_inspect("--json", ref))
    return info


@pytest.mark.parametrize("name", bundled_packages())
def test_every_bundled_package_is_described_consistently(name: str) -> None:
    raw = (bundled_dir() / f"{name}.package.json").read_bytes()
    doc = json.loads(raw)

    info = _inspect_json(name)  # by name, as `ecli run` resolves it

    assert info["name"] == name
    assert info["sha256"] == hashlib.sha256(raw).hexdigest()
    assert info["file_size"] == len(raw)
    assert info["object_size"] == doc["bpf_object_size"]
    assert len(base64.b64decode(doc["bpf_object"])) < info["object_size"]  # it is compressed
    assert [p["name"] for p in info["programs"]] == [p["name"] for p in
                                                     doc["meta"]["bpf_skel"]["progs"]]
    assert all(p["attach"] for p in info["programs"])
    assert all(m["type"] != "UNSPEC" for m in info["maps"])
    assert len(info["export_types"]) == len(doc["meta"].get("export_types") or [])
    event_maps = {m["name"] for m in info["maps"] if m["type"] in ("RINGBUF", "PERF_EVENT_ARRAY")}
    for export in info["export_types"]:
        assert set(export["maps"]) <= event_maps
        ends = [f["offset"] + (f["size"] or 0) for f in export["fields"]]
        assert ends == sorted(ends) and ends[-1] <= export["size"]


def test_opensnoop_text_shows_programs_maps_options_and_the_event_layout() -> None:
    out = _inspect("opensnoop")
    lines = out.splitlines()

    assert lines[0].startswith("opensnoop  (") and lines[0].endswith("opensnoop.package.json)")
    raw = (bundled_dir() / "opensnoop.package.json").read_bytes()
    assert f"sha256        {hashlib.sha256(raw).hexdigest()}" in out
    assert f"{len(raw)} bytes package" in out
    assert any(ln.split() == ["tracepoint__syscalls__sys_exit_openat", "tracepoint",
                              "tp/syscalls/sys_exit_openat"] for ln in lines)
    assert any(ln.split()[:7] == ["start", "HASH", "u32", "(4)", "struct", "args_t", "(16)"]
               for ln in lines)
    assert any(ln.split()[:2] == ["events", "RINGBUF"] for ln in lines)
    assert any(ln.split() == ["--targ_uid", "uid_t", "4294967295"] for ln in lines)
    assert "struct event (296 bytes, events from events)" in out
    assert any(ln.split() == ["16", "4", "ret", "int"] for ln in lines)
    assert any(ln.split() == ["40", "255", "fname", "char[255]"] for ln in lines)
    assert "\x1b[" not in out  # plain text, readable in CI logs


def test_json_of_an_ecc_built_histogram_package() -> None:
    info = _inspect_json(str(vector_path("runqlat")))

    assert info["eunomia_version"]
    assert [p["attach"] for p in info["programs"]] == ["raw_tracepoint"] * 3
    hists = next(m for m in info["maps"] if m["name"] == "hists")
    assert hists["type"] == "HASH"
    assert hists["key"] == {"type": "u32", "size": 4}
    assert hists["value"] == {"type": "struct hist", "size": 120}
    assert hists["sample"] == {"interval": 1000, "type": "log2_hist"}
    assert {o["name"]: (o["type"], o["default"]) for o in info["options"]}["targ_ms"] == \
        ("bool", False)
    [hist] = info["export_types"]
    assert [(f["name"], f["offset"], f["size"]) for f in hist["fields"]] == \
        [("slots", 0, 104), ("comm", 104, 16)]


@pytest.mark.parametrize(("vector", "name"), [("bootstrap", "client"), ("simple", "simple")])
def test_ecc_vectors_are_described_in_text(vector: str, name: str) -> None:
    path = vector_path(vector)
    out = _inspect(str(path))

    assert out.startswith(f"{name}  ({path})")  # the name is the meta's obj_name
    for heading in ("programs (", "maps (", "options (", "export types ("):
        assert heading in out


def test_a_yaml_package_is_described_like_its_json_twin(tmp_path: Path) -> None:
    from eunomia_bpf.package import dump_package, read_package

    pkg = read_package((bundled_dir() / "bootstrap.package.json").read_bytes())
    path = tmp_path / "bootstrap.package.yaml"
    path.write_bytes(dump_package(pkg.object, pkg.meta, yaml=True))

    from_yaml = _inspect_json(str(path))
    from_json = _inspect_json("bootstrap")

    for key in ("programs", "maps", "options", "export_types", "object_size"):
        assert from_yaml[key] == from_json[key]
    assert from_yaml["sha256"] != from_json["sha256"]


def test_an_unknown_package_is_one_error_line() -> None:
    done = run_ecli(["inspect", "no-such-package-anywhere"])

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("ecli: error: resolve no-such-package-anywhere:")
    assert len(done.stderr.splitlines()) == 1
