"""The store under concurrent `ebpm install` runs and interrupted writes.

Real processes (multiprocessing, spawn) run the real `install` on path dependencies into
one store; afterwards the index must hold every name each of them installed, and the blob
directory only complete files whose content matches their sha256 name."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from eunomia_bpf.ebpm.resolver import install
from eunomia_bpf.ebpm.store import Store

WORKERS = 4
PROJECTS_PER_WORKER = 4
BLOB_SIZE = 1 << 20   # large enough that writes of several processes overlap


def _blob(seed: str) -> bytes:
    block = hashlib.sha256(seed.encode()).digest()
    return block * (BLOB_SIZE // len(block))


def _project(root: Path, name: str, deps: dict[str, str]) -> Path:
    project = root / "projects" / name
    project.mkdir(parents=True)
    lines = [f'{dep} = {{ path = "{location}" }}' for dep, location in sorted(deps.items())]
    (project / "ebpm.toml").write_text(f'[package]\nname = "{name}"\nversion = "0.1.0"\n\n'
                                       "[dependencies]\n" + "\n".join(lines) + "\n")
    return project


def _source(root: Path, name: str, data: bytes) -> Path:
    path = root / "sources" / name
    path.mkdir(parents=True)
    (path / "package.json").write_bytes(data)
    return path


def _install_all(home: str, projects: list[str], barrier: Any) -> None:
    barrier.wait()
    for project in projects:
        install(Path(project), store=Store(Path(home)))


def _store_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home / "store")) for p in (home / "store").rglob("*")
                  if p.is_file())


def _assert_only_verified_blobs(home: Path) -> set[str]:
    digests = set()
    for path in (home / "store" / "sha256").iterdir():
        assert path.name.endswith(".package.json"), f"stray file {path.name}"
        digest = path.name.removesuffix(".package.json")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"partial {path}"
        digests.add(digest)
    return digests


def test_concurrent_installs_keep_a_consistent_index(tmp_path: Path) -> None:
    shared = _blob("shared")
    _source(tmp_path, "shared", shared)
    expected = {"shared": hashlib.sha256(shared).hexdigest()}
    work: list[list[str]] = []
    for w in range(WORKERS):
        projects = []
        for p in range(PROJECTS_PER_WORKER):
            own = f"own{w}_{p}"
            data = _blob(own)
            _source(tmp_path, own, data)
            expected[own] = hashlib.sha256(data).hexdigest()
            projects.append(str(_project(tmp_path, f"app{w}_{p}", {
                "shared": "../../sources/shared", own: f"../../sources/{own}"})))
        work.append(projects)
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    procs = [ctx.Process(target=_install_all, args=(str(home), projects, barrier))
             for projects in work]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0

    index = Store(home).index()
    assert {name: entry.sha256 for name, entry in index.items()} == expected
    assert _assert_only_verified_blobs(home) == set(expected.values())
    assert _store_files(home) == sorted(
        [".lock", "index.json", *(f"sha256/{d}.package.json" for d in expected.values())])


def test_failure_between_write_and_rename_leaves_nothing(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = _blob("good"), _blob("bad")
    _source(tmp_path, "a_good", good)
    _source(tmp_path, "b_bad", bad)
    project = _project(tmp_path, "app", {"a_good": "../../sources/a_good",
                                         "b_bad": "../../sources/b_bad"})
    home = tmp_path / "home"
    bad_digest = hashlib.sha256(bad).hexdigest()
    real_replace = os.replace

    def replace(src: str, dst: str | Path) -> None:
        if bad_digest in str(dst):
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)   # the store renames with os.replace
    with pytest.raises(OSError, match="No space left"):
        install(project, store=Store(home))
    monkeypatch.undo()

    assert not Store(home).blob_path(bad_digest).exists()
    assert Store(home).index() == {}                      # not named, not runnable
    assert not (project / "ebpm.lock").exists()
    # what did get written is complete (the first package), nothing else
    assert _assert_only_verified_blobs(home) == {hashlib.sha256(good).hexdigest()}
    assert _store_files(home) == [".lock", (f"sha256/{hashlib.sha256(good).hexdigest()}"
                                           ".package.json")]


def _install_then_hang(home: str, project: str, writing: Any) -> None:
    """Install, but stop for good in the middle of writing the package (before fsync and
    rename), as a process that is killed there would."""
    def hang(fd: object) -> None:
        writing.set()
        time.sleep(600)

    os.fsync = hang  # in this child process only: the store writes through os.fsync
    install(Path(project), store=Store(Path(home)))


def test_killed_mid_write_leaves_no_partial_package(tmp_path: Path) -> None:
    data = _blob("killed")
    digest = hashlib.sha256(data).hexdigest()
    _source(tmp_path, "killed", data)
    project = _project(tmp_path, "app", {"killed": "../../sources/killed"})
    home = tmp_path / "home"
    ctx = multiprocessing.get_context("spawn")
    writing = ctx.Event()
    proc = ctx.Process(target=_install_then_hang, args=(str(home), str(project), writing))
    proc.start()
    try:
        assert writing.wait(60), "the installer never started writing"
        temporaries = [p for p in (home / "store" / "sha256").iterdir()
                       if p.name.endswith(".tmp")]
        assert temporaries and temporaries[0].stat().st_size > 0   # really mid-write
    finally:
        proc.kill()  # our own child, by its handle
        proc.join(30)

    store = Store(home)
    assert not store.blob_path(digest).exists()
    assert store.index() == {}
    assert store.installed("killed") is None
    assert not (project / "ebpm.lock").exists()

    # the next install completes it and sweeps what the dead writer left
    install(project, store=store)
    assert store.installed("killed") == (data, str(store.blob_path(digest)))
    assert _store_files(home) == [".lock", "index.json", f"sha256/{digest}.package.json"]
