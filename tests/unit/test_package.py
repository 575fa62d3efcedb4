from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eunomia_bpf import PackageError, dump_package, read_package
from eunomia_bpf.package import MAX_OBJECT_SIZE

ELF = b"\x7fELF" + bytes(60)
META: dict[str, Any] = {"bpf_skel": {"obj_name": "x_bpf", "progs": None, "maps": None,
                                     "data_sections": []}}


def pkg_doc(obj: bytes = ELF, size: int | None = None, meta: Any = None) -> dict[str, Any]:
    return {"bpf_object": base64.b64encode(zlib.compress(obj)).decode(),
            "bpf_object_size": len(obj) if size is None else size,
            "meta": META if meta is None else meta}


def as_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def test_reads_every_vector(vectors: Path) -> None:
    for path in sorted(vectors.glob("*.package.json")):
        pkg = read_package(path.read_bytes())
        doc = json.loads(path.read_bytes())
        assert len(pkg.object) == doc["bpf_object_size"]
        assert pkg.object.startswith(b"\x7fELF")
        assert pkg.meta["bpf_skel"]["obj_name"] == doc["meta"]["bpf_skel"]["obj_name"]
        assert len(pkg.digest) == 64


def test_null_maps_and_progs_are_accepted() -> None:
    pkg = read_package(as_bytes(pkg_doc()))
    assert pkg.object == ELF
    assert pkg.name == "x"


def test_yaml_package_round_trips() -> None:
    data = dump_package(ELF, META, yaml=True)
    assert not data.lstrip().startswith(b"{")
    pkg = read_package(data)
    assert pkg.object == ELF and dict(pkg.meta) == META


def test_dump_is_deterministic_and_readable() -> None:
    a = dump_package(ELF, META)
    assert a == dump_package(ELF, dict(reversed(list(META.items()))))
    assert read_package(a).object == ELF


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "top level"),
    (as_bytes({"bpf_object": "AAAA"}), "must contain"),
    (as_bytes({**pkg_doc(), "bpf_object": "***"}), "base64"),
    (as_bytes({**pkg_doc(), "bpf_object": base64.b64encode(b"not zlib").decode()}), "zlib"),
    (as_bytes(pkg_doc(size=10)), "bpf_object_size"),
    (as_bytes(pkg_doc(size=10_000)), "bpf_object_size"),
    (as_bytes(pkg_doc(obj=b"hello world")), "not an ELF"),
    (as_bytes(pkg_doc(meta={"bpf_skel": {"progs": []}})), "obj_name"),
    (as_bytes(pkg_doc(meta={"bpf_skel": {"obj_name": "x", "progs": [{"name": 3}]}})), r"progs\[0\]"),
])
def test_bad_packages_give_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(PackageError, match=message) as info:
        read_package(data)
    assert "\n" not in str(info.value)


def test_truncated_zlib_stream() -> None:
    obj = ELF * 100
    comp = zlib.compress(obj)[:-10]
    doc = {"bpf_object": base64.b64encode(comp).decode(), "bpf_object_size": len(obj),
           "meta": META}
    with pytest.raises(PackageError, match="truncated"):
        read_package(as_bytes(doc))


def test_zlib_bomb_is_stopped_without_inflating_it() -> None:
    bomb = zlib.compress(bytes(200 * 1024 * 1024), 9)  # 200 MiB of zeros in ~200 KiB
    doc = {"bpf_object": base64.b64encode(bomb).decode(), "bpf_object_size": 1024,
           "meta": META}
    with pytest.raises(PackageError, match="more than bpf_object_size"):
        read_package(as_bytes(doc))
    doc["bpf_object_size"] = MAX_OBJECT_SIZE + 1
    with pytest.raises(PackageError, match="exceeds the limit"):
        read_package(as_bytes(doc))


def test_whole_file_size_cap() -> None:
    with pytest.raises(PackageError, match="over the limit"):
        read_package(b" " * 101, max_size=100)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_raise_only_package_errors(data: bytes) -> None:
    try:
        read_package(data)
    except PackageError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["bpf_object", "bpf_object_size", "meta", "bpf_skel", "obj_name",
                         "progs", "maps", "name", "attach", "x"]), children, max_size=4),
    max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_package_errors(doc: Any) -> None:
    try:
        read_package(json.dumps(doc).encode())
    except PackageError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=3000), st.integers(min_value=0, max_value=255))
def test_corrupted_vector_bytes_raise_only_package_errors(pos: int, byte: int) -> None:
    from tests.support import VECTORS

    path = VECTORS / "simple.package.json"
    if not path.is_file():
        pytest.skip(f"compatibility vector {path} is absent")
    data = bytearray(path.read_bytes())
    data[pos % len(data)] = byte
    try:
        read_package(bytes(data))
    except PackageError:
        pass
