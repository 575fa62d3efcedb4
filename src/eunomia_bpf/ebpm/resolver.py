"""Dependency resolution and installation.

Walks the dependency graph depth-first in name order (deterministic), from the project's
``ebpm.toml`` through each dependency's own manifest. A git dependency with a range gets
its highest ``vX.Y.Z`` tag in the range — or the version in ``ebpm.lock`` when that still
fits, unless it is being updated. When a second requirer's range excludes the version
chosen, the highest version in both is chosen and the walk starts again; when there is
none, the conflict names both requirers. A package that is its own ancestor is a cycle.

The project's direct dependencies are *exposed* (installed under their name for
``ebpm run NAME`` / ``ecli run NAME``), and so are the ``public = true`` dependencies of
exposed packages; the others are private: locked and stored, but not named.

Nothing is written until every package has been fetched and verified.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

from .lock import LOCK_NAME, LockEntry, dump_lock, read_lock
from .manifest import MANIFEST_NAME, Dependency, Manifest, parse_dependencies
from .semver import parse_range, parse_version
from .sources import EbpmError, Fetched, Fetcher, source_key
from .store import Installed, Store

__all__ = ["InstallResult", "Resolution", "install", "read_project", "resolve"]

_MAX_RESTARTS = 20


class _Restart(Exception):
    pass


@dataclass
class Resolution:
    chosen: dict[str, Fetched] = field(default_factory=dict)        # by source key
    names: dict[str, str] = field(default_factory=dict)             # source key -> dep name
    requested_by: dict[str, list[str]] = field(default_factory=dict)
    exposed: dict[str, str] = field(default_factory=dict)           # name -> source key

    def lock_entries(self) -> list[LockEntry]:
        return [LockEntry(name=self.names[key], source=key, version=f.version,
                          commit=f.commit, module=f.module, sha256=f.sha256,
                          exposed=self.exposed.get(self.names[key]) == key,
                          requested_by=tuple(sorted(set(self.requested_by[key]))))
                for key, f in self.chosen.items()]


def _satisfies(fetched: Fetched, dep: Dependency, sha256: str | None) -> bool:
    if dep.version and fetched.version and \
            not parse_range(dep.version).matches(parse_version(fetched.version)):
        return False
    return not (sha256 and fetched.sha256 != sha256)


class _Walk:
    def __init__(self, root_name: str, root_dir: Path, fetcher: Fetcher,
                 locked: dict[str, LockEntry], unlocked: Collection[str] | None) -> None:
        self.root_name = root_name
        self.root_key = "path+" + str(root_dir.resolve())
        self.fetcher = fetcher
        self.locked = locked
        self.unlocked = unlocked
        self.forced: dict[str, str] = {}   # source key -> version chosen after a conflict
        self.result = Resolution()
        self.requirements: dict[str, list[tuple[str, Dependency]]] = {}

    def lock_for(self, key: str, dep: Dependency) -> LockEntry | None:
        entry = self.locked.get(key)
        if entry is None or (self.unlocked is not None and
                             (not self.unlocked or dep.name in self.unlocked)):
            return None
        return entry

    def choose(self, key: str, dep: Dependency, base: Path | None) -> Fetched:
        entry = self.lock_for(key, dep)
        if dep.kind == "url":
            return self.fetcher.fetch_url(dep, dep.sha256 or (entry.sha256 if entry else None))
        if dep.kind == "path":
            assert base is not None
            return self.fetcher.fetch_path(dep, base)
        if entry and entry.commit and key not in self.forced and (
                not dep.version or (entry.version and parse_range(dep.version).matches(
                    parse_version(entry.version)))):
            fetched = self.fetcher.fetch_git(dep, self.fetcher.git_commit(dep, entry.commit),
                                             entry.version)
            if fetched.sha256 != entry.sha256:
                raise EbpmError(f"verify {dep.name}: sha256 mismatch with {LOCK_NAME}: "
                                f"expected {entry.sha256}, got {fetched.sha256}")
            return fetched
        if dep.version or key in self.forced or not (dep.tag or dep.branch or dep.rev):
            versions = self.fetcher.git_versions(dep)
            best = parse_version(self.forced[key]) if key in self.forced else \
                parse_range(dep.version or "*").best(list(versions))
            if best is None:
                if dep.version or versions:
                    have = ", ".join(str(v) for v in sorted(versions)) or "no vX.Y.Z tags"
                    raise EbpmError(f"resolve {dep.name}: no version of {dep.location} "
                                    f"matches {dep.version} (it has: {have})")
                commit = self.fetcher.git_commit(dep)   # no releases at all: HEAD
                return self.fetcher.fetch_git(dep, commit, "")
            commit = self.fetcher.git_commit(replace(dep, tag=versions[best], version=None))
            return self.fetcher.fetch_git(dep, commit, str(best))
        return self.fetcher.fetch_git(dep, self.fetcher.git_commit(dep), "")

    def conflict(self, key: str, dep: Dependency, requirer: str) -> None:
        reqs = self.requirements[key]
        ranges = [d.version for _, d in reqs if d.version]
        fixed = [d for _, d in reqs if d.kind == "git" and (d.tag or d.branch or d.rev)]
        if dep.kind == "git" and ranges and not fixed:
            versions = self.fetcher.git_versions(dep)
            fits = [v for v in versions if all(parse_range(r).matches(v) for r in ranges)]
            if fits:
                self.forced[key] = str(max(fits))
                raise _Restart
        first_by, first = next((r, d) for r, d in reqs if (r, d) != (requirer, dep))
        chosen = self.result.chosen[key]
        raise EbpmError(
            f"resolve dependencies: conflict on {dep.name} ({dep.location}): "
            f"{first_by} needs {first.pin} (chose {chosen.version or chosen.sha256[:12]}), "
            f"{requirer} needs {dep.pin}; no version satisfies both")

    def visit(self, requirer: str, deps: tuple[Dependency, ...], base: Path | None,
              path: list[tuple[str, str]], exposed: bool) -> None:
        for dep in sorted(deps, key=lambda d: d.name):
            key = source_key(dep, base)
            on_path = [k for k, _ in path]
            if key in on_path:
                names = [n for _, n in path[on_path.index(key):]] + [dep.name]
                raise EbpmError(f"resolve dependencies: dependency cycle: "
                                f"{' -> '.join(names)}")
            self.requirements.setdefault(key, []).append((requirer, dep))
            self.result.requested_by.setdefault(key, []).append(requirer)
            if exposed:
                other = self.result.exposed.get(dep.name)
                if other is not None and other != key:
                    raise EbpmError(f"resolve dependencies: two different packages would be "
                                    f"installed as {dep.name}: {other.split('+', 1)[1]} and "
                                    f"{dep.location}")
                self.result.exposed[dep.name] = key
            chosen = self.result.chosen.get(key)
            if chosen is not None:
                if not _satisfies(chosen, dep, dep.sha256):
                    self.conflict(key, dep, requirer)
                continue
            fetched = self.choose(key, dep, base)
            if not _satisfies(fetched, dep, None):
                raise EbpmError(f"resolve {dep.name}: {dep.location} is version "
                                f"{fetched.version}, outside {dep.version}")
            self.result.chosen[key] = fetched
            self.result.names[key] = dep.name
            self.visit(fetched.name, fetched.dependencies, fetched.base,
                       [*path, (key, fetched.name)],
                       exposed=False)
            if exposed:
                self.expose_public(fetched)

    def expose_public(self, fetched: Fetched) -> None:
        for dep in fetched.dependencies:
            if dep.public:
                key = source_key(dep, fetched.base)
                if self.result.exposed.setdefault(dep.name, key) != key:
                    raise EbpmError(f"resolve dependencies: two different packages would be "
                                    f"installed as {dep.name}")
                self.expose_public(self.result.chosen[key])


def resolve(manifest: Manifest, deps: tuple[Dependency, ...], root_dir: Path,
            fetcher: Fetcher, locked: tuple[LockEntry, ...] = (),
            unlocked: Collection[str] | None = None) -> Resolution:
    """Choose and fetch every package; ``unlocked``: names to re-resolve (empty: all)."""
    by_key = {e.source: e for e in locked}
    forced: dict[str, str] = {}
    for _ in range(_MAX_RESTARTS):
        walk = _Walk(manifest.package.name, root_dir, fetcher, by_key, unlocked)
        walk.forced = forced
        try:
            walk.visit(manifest.package.name, deps, root_dir,
                       [(walk.root_key, manifest.package.name)], exposed=True)
        except _Restart:
            forced = walk.forced
            continue
        return walk.result
    raise EbpmError("resolve dependencies: no solution found after "
                    f"{_MAX_RESTARTS} attempts")


def read_project(directory: Path) -> tuple[Manifest, tuple[Dependency, ...]]:
    path = directory / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EbpmError(f"read {path}: no such file (create one with `ebpm init` or "
                        f"`ebpm get`)") from None
    return parse_dependencies(text, origin=str(path))


@dataclass(frozen=True)
class InstallResult:
    entries: tuple[LockEntry, ...]
    lock_changed: bool


def install(directory: Path, *, store: Store | None = None, locked: bool = False,
            offline: bool = False, update: Collection[str] | None = None) -> InstallResult:
    """Resolve, fetch and verify everything, then store it, update the index and write
    ``ebpm.lock``. ``update``: names to re-resolve ignoring the lock (empty: all)."""
    store = store or Store()
    manifest, deps = read_project(directory)
    lock_path = directory / LOCK_NAME
    old = read_lock(lock_path)
    if locked and old is None:
        raise EbpmError(f"install --locked: no {LOCK_NAME} in {directory}")
    known = {d.name for d in deps}
    missing = sorted(set(update or ()) - known)
    if missing:
        raise EbpmError(f"update {missing[0]}: not a dependency of {manifest.package.name}")
    resolution = resolve(manifest, deps, directory, Fetcher(store, offline=offline),
                         old or (), update)
    entries = tuple(sorted(resolution.lock_entries(), key=lambda e: (e.name, e.source)))
    text = dump_lock(entries)
    old_text = lock_path.read_text(encoding="utf-8") if old is not None else None
    changed = text != old_text
    if locked and changed:
        raise EbpmError(f"install --locked: {LOCK_NAME} would change (run `ebpm install` "
                        f"without --locked, or `ebpm update`)")
    with store.locked():
        for fetched in resolution.chosen.values():
            store.add_blob(fetched.data, fetched.sha256)
        index = store.index()
        for entry in entries:
            if entry.exposed:
                index[entry.name] = Installed(entry.name, entry.sha256, entry.source,
                                              entry.version)
        store.write_index(index)
    if changed:
        from .._files import write_atomic

        write_atomic(lock_path, text.encode())
    return InstallResult(entries, changed)
