"""The resolver over local path dependencies (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eunomia_bpf.ebpm.resolver import install
from eunomia_bpf.ebpm.sources import EbpmError
from eunomia_bpf.ebpm.store import Store


def _project(path: Path, name: str, deps: str = "", package: bytes | None = b"{}") -> Path:
    path.mkdir(parents=True)
    (path / "ebpm.toml").write_text(
        f'[package]\nname = "{name}"\nversion = "1.2.0"\n[dependencies]\n{deps}')
    if package is not None:
        (path / "package.json").write_bytes(package + name.encode())
    return path


def test_public_dependencies_are_exposed_private_ones_not(tmp_path: Path) -> None:
    _project(tmp_path / "pub", "pub")
    _project(tmp_path / "priv", "priv")
    _project(tmp_path / "lib", "lib", 'pub = { path = "../pub", public = true }\n'
                                      'priv = { path = "../priv" }\n')
    app = _project(tmp_path / "app", "app", 'lib = { path = "../lib", version = "^1" }\n',
                   package=None)
    store = Store(tmp_path / "home")
    result = install(app, store=store)
    assert [(e.name, e.exposed) for e in result.entries] == [
        ("lib", True), ("priv", False), ("pub", True)]
    assert sorted(store.index()) == ["lib", "pub"]
    assert store.installed("pub") is not None and store.installed("priv") is None
    again = install(app, store=store, locked=True)
    assert not again.lock_changed


def test_version_range_of_a_path_dependency_is_checked(tmp_path: Path) -> None:
    _project(tmp_path / "lib", "lib")
    app = _project(tmp_path / "app", "app", 'lib = { path = "../lib", version = "^2" }\n')
    store = Store(tmp_path / "home")
    with pytest.raises(EbpmError, match="is version 1.2.0, outside \\^2"):
        install(app, store=store)
    assert not (tmp_path / "home" / "store" / "sha256").exists() or \
        not any((tmp_path / "home" / "store" / "sha256").iterdir())


def test_corrupt_store_blob_is_refused_on_run(tmp_path: Path) -> None:
    _project(tmp_path / "lib", "lib")
    app = _project(tmp_path / "app", "app", 'lib = { path = "../lib" }\n', package=None)
    store = Store(tmp_path / "home")
    install(app, store=store)
    entry = store.index()["lib"]
    store.blob_path(entry.sha256).write_bytes(b"tampered")
    from eunomia_bpf.errors import ResolveError

    with pytest.raises(ResolveError, match="sha256 mismatch"):
        store.installed("lib")
