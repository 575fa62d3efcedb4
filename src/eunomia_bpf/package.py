"""Package files: eunomia ``package.json`` / ``package.yaml`` bytes <-> :class:`Package`.

Pure: no kernel, no network. The format is the public eunomia-bpf one::

    {"bpf_object": base64(zlib(ELF)), "bpf_object_size": len(ELF), "meta": {...}}

Reading is defensive: the whole file, the inflated object and the meta are size-capped,
the inflated size must equal ``bpf_object_size`` and the meta must match the JSON Schema
in ``schema/package.schema.json``. Every failure is a :class:`PackageError`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PackageError

__all__ = ["MAX_OBJECT_SIZE", "MAX_PACKAGE_SIZE", "Package", "dump_package", "read_package"]

#: Largest package file accepted (JSON or YAML text).
MAX_PACKAGE_SIZE = 64 * 1024 * 1024
#: Largest inflated BPF object accepted (guards against zlib bombs).
MAX_OBJECT_SIZE = 64 * 1024 * 1024

_ZLIB_LEVEL = 9  # fixed, so that the same object always gives the same package bytes


@dataclass(frozen=True)
class Package:
    """A decoded package: the ELF object and its meta, as they were in the file."""

    object: bytes
    meta: Mapping[str, Any]
    digest: str = field(default="")  # sha256 of the package file it was read from

    @property
    def bpf_skel(self) -> Mapping[str, Any]:
        skel: Mapping[str, Any] = self.meta.get("bpf_skel") or {}
        return skel

    @property
    def name(self) -> str:
        """The program's name: ``obj_name`` without the ``_bpf`` suffix ecc adds."""
        obj_name = str(self.bpf_skel.get("obj_name") or "program")
        return obj_name.removesuffix("_bpf")

    @property
    def doc(self) -> Mapping[str, Any]:
        doc: Mapping[str, Any] = self.bpf_skel.get("doc") or {}
        return doc


@functools.cache
def _validator() -> Any:
    """The package JSON Schema as a Python function.

    fastjsonschema turns the schema into Python source (~15 ms); the source is kept in
    the user's cache directory, keyed by the schema and library version, so later
    start-ups only compile a small module (importing jsonschema alone costs ~45 ms).
    """
    import fastjsonschema

    text = (Path(__file__).parent / "schema" / "package.schema.json").read_text()
    key = hashlib.sha256(f"{fastjsonschema.VERSION}\0{text}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "eunomia-bpf"
    path = cache / f"package_schema_{key}.py"
    try:
        code = path.read_text()
    except OSError:
        schema = json.loads(text)
        schema.pop("$id", None)  # so that the entry point is named `validate`
        code = fastjsonschema.compile_to_code(schema)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(code)
            tmp.replace(path)  # atomic: concurrent start-ups never see half a file
        except OSError:
            pass  # a read-only home only costs the compile next time
    namespace: dict[str, Any] = {}
    exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 - our schema's code
    return namespace["validate"]


def _parse_text(data: bytes) -> Any:
    stripped = data.lstrip()
    if stripped.startswith((b"{", b"[")):
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PackageError(f"read package: not valid JSON: {exc}") from None
        except RecursionError:
            raise PackageError("read package: JSON nested too deeply") from None
    import yaml  # only YAML packages pay for this import

    try:
        return yaml.safe_load(data)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PackageError(f"read package: neither JSON nor YAML: {first}") from None
    except (RecursionError, UnicodeDecodeError, ValueError) as exc:
        raise PackageError(f"read package: neither JSON nor YAML: {exc}") from None


def _validate(doc: Any) -> None:
    import fastjsonschema

    try:
        _validator()(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        name = str(exc.name or "data")
        where = name.removeprefix("data").lstrip(".") or "(top level)"
        message = str(exc.message).replace(name + " ", "", 1)
        raise PackageError(f"read package: {where}: {message}") from None


def _inflate(encoded: str, expected: int, limit: int) -> bytes:
    if expected > limit:
        raise PackageError(
            f"read package: bpf_object_size {expected} exceeds the limit of {limit} bytes")
    try:
        compressed = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PackageError(f"read package: bpf_object is not valid base64: {exc}") from None
    inflater = zlib.decompressobj()
    try:
        # Inflate at most one byte more than announced: a zlib bomb stops right there.
        obj = inflater.decompress(compressed, expected + 1)
    except zlib.error as exc:
        raise PackageError(f"read package: bpf_object is not valid zlib data: {exc}") from None
    if len(obj) > expected:
        raise PackageError(f"read package: bpf_object inflates to more than "
                           f"bpf_object_size ({expected} bytes)")
    if not inflater.eof:
        raise PackageError("read package: bpf_object is truncated zlib data")
    if len(obj) != expected:
        raise PackageError(f"read package: bpf_object inflates to {len(obj)} bytes, "
                           f"but bpf_object_size says {expected}")
    return obj


def read_package(data: bytes, *, max_size: int = MAX_PACKAGE_SIZE,
                 max_object_size: int = MAX_OBJECT_SIZE) -> Package:
    """Parse package bytes (JSON or YAML) into a :class:`Package`."""
    if len(data) > max_size:
        raise PackageError(
            f"read package: file is {len(data)} bytes, over the limit of {max_size}")
    if not data.strip():
        raise PackageError("read package: file is empty")
    doc = _parse_text(data)
    if not isinstance(doc, dict):
        raise PackageError("read package: top level must be an object with bpf_object and meta")
    _validate(doc)
    obj = _inflate(doc["bpf_object"], doc["bpf_object_size"], max_object_size)
    if not obj.startswith(b"\x7fELF"):
        raise PackageError("read package: bpf_object is not an ELF object")
    return Package(object=obj, meta=doc["meta"], digest=hashlib.sha256(data).hexdigest())


def dump_package(obj: bytes, meta: Mapping[str, Any], *, yaml: bool = False) -> bytes:
    """Serialise a package deterministically: sorted keys, fixed zlib level, no timestamps."""
    doc = {
        "bpf_object": base64.b64encode(zlib.compress(obj, _ZLIB_LEVEL)).decode("ascii"),
        "bpf_object_size": len(obj),
        "meta": meta,
    }
    if yaml:
        import yaml as pyyaml

        text: str = pyyaml.safe_dump(doc, sort_keys=True, default_flow_style=False, width=1 << 30)
        return text.encode()
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
