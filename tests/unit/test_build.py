"""The package builder: meta like ecc's, reproducible objects, clear errors."""

from __future__ import annotations

import base64
import json
import shutil
import zlib
from pathlib import Path
from typing import Any

import pytest

from eunomia_bpf.build import (
    BuildError,
    CompileError,
    ToolNotFoundError,
    compile_object,
    generate_meta,
    object_name,
)
from eunomia_bpf.build._meta import internal_map_name

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO.parent / "shared" / "vectors" / "eunomia"
EXAMPLES = REPO / "examples"

needs_clang = pytest.mark.skipif(
    shutil.which("clang") is None or shutil.which("llvm-strip") is None,
    reason="clang/llvm-strip not installed (apt-get install clang llvm)")

# Keys ecc writes from `///` doc comments and eunomia.toml, which an object alone does not
# carry; the doc-comment builder adds them later.
_FROM_DOC_COMMENTS = ("sample", "export_config", "description", "cmdarg", "value")


def _vector_files() -> list[Path]:
    return sorted(VECTORS.glob("*.package.json")) if VECTORS.is_dir() else []


def _without_doc_keys(items: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [{k: v for k, v in item.items() if k not in _FROM_DOC_COMMENTS} for item in items]


@pytest.mark.skipif(not _vector_files(),
                    reason=f"ecc-built vectors not found at {VECTORS}")
@pytest.mark.parametrize("vector", _vector_files(), ids=lambda p: p.name)
def test_meta_of_an_ecc_object_equals_the_meta_ecc_wrote(vector: Path) -> None:
    doc = json.loads(vector.read_bytes())
    obj = zlib.decompress(base64.b64decode(doc["bpf_object"]))
    want = doc["meta"]

    got = generate_meta(obj, obj_name=want["bpf_skel"]["obj_name"])

    assert got["bpf_skel"]["progs"] == want["bpf_skel"]["progs"]
    assert got["bpf_skel"]["maps"] == _without_doc_keys(want["bpf_skel"]["maps"])
    for section in want["bpf_skel"]["data_sections"]:
        section["variables"] = _without_doc_keys(section["variables"])
    assert got["bpf_skel"]["data_sections"] == want["bpf_skel"]["data_sections"]
    assert got.get("export_types") == want.get("export_types")


@pytest.mark.parametrize(("obj_name", "section", "map_name"), [
    ("client_bpf", ".rodata", "client_b.rodata"),
    ("client_bpf", ".bss", "client_b.bss"),
    ("runqlat_bpf", ".data", "runqlat_.data"),
    ("simple_bpf", ".rodata.str1.1", ".rodata.str1.1"),
    ("x_bpf", ".rodata", "x_bpf.rodata"),
    ("simple_bpf", ".data.a_long_section_name", ".data.a_long_se"),
])
def test_internal_maps_are_named_like_libbpf_names_them(obj_name: str, section: str,
                                                        map_name: str) -> None:
    assert internal_map_name(obj_name, section) == map_name


def test_object_name_follows_bpftool() -> None:
    assert object_name(Path("dir/opensnoop.bpf.c")) == "opensnoop_bpf"
    assert object_name(Path("my-tool.bpf.c")) == "my_tool_bpf"


def test_meta_of_something_that_is_not_elf_is_a_build_error() -> None:
    with pytest.raises(BuildError, match="not an ELF object"):
        generate_meta(b"not an object at all", obj_name="x_bpf")


@needs_clang
def test_builds_in_two_directories_give_identical_bytes(tmp_path: Path) -> None:
    first = tmp_path / "a"
    second = tmp_path / "some" / "deeper" / "b"
    shutil.copytree(EXAMPLES / "opensnoop", first)
    shutil.copytree(EXAMPLES / "opensnoop", second)

    one = compile_object(first / "opensnoop.bpf.c")
    two = compile_object(second / "opensnoop.bpf.c")

    assert one == two
    assert str(tmp_path).encode() not in one
    assert b"\x7fELF" == one[:4]


@needs_clang
def test_compile_error_carries_clang_diagnostics(tmp_path: Path) -> None:
    source = tmp_path / "broken.bpf.c"
    source.write_text('#include "vmlinux.h"\nint f(void) { return undeclared_thing; }\n')

    with pytest.raises(CompileError) as caught:
        compile_object(source)

    assert "compile broken.bpf.c:" in str(caught.value)
    assert "undeclared_thing" in caught.value.diagnostics
    assert "undeclared_thing" in str(caught.value).splitlines()[0]


def test_missing_clang_says_how_to_install_it(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "x.bpf.c"
    source.write_text("")
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(ToolNotFoundError, match="apt-get install clang") as caught:
        compile_object(source)
    assert caught.value.tool == "clang"


@needs_clang
def test_header_names_the_export_type(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "bootstrap", tmp_path / "bootstrap")
    source = tmp_path / "bootstrap" / "bootstrap.bpf.c"
    obj = compile_object(source)

    from_header = generate_meta(obj, obj_name="bootstrap_bpf",
                                header=tmp_path / "bootstrap" / "bootstrap.h")
    from_dummy = generate_meta(obj, obj_name="bootstrap_bpf")

    assert from_header["export_types"] == from_dummy["export_types"]
    [event] = from_header["export_types"]
    assert event["name"] == "event"
    assert [m["name"] for m in event["members"]][:3] == ["pid", "ppid", "exit_code"]
    with pytest.raises(BuildError, match="struct nothing_like_it"):
        generate_meta(obj, obj_name="bootstrap_bpf", export_types=["nothing_like_it"])


