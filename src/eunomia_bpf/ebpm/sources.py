"""Where dependencies come from: git repositories (through the ``git`` command), http(s)
URLs of package files, and local paths. Each gives a :class:`Fetched` package.

A git source holds the packages its publisher committed with ``ebpm publish``:
``packages/<module>.package.json`` next to ``ebpm.toml``, at a ``vX.Y.Z`` tag. Consumers
need no compiler. Bare clones are cached under ``$EUNOMIA_HOME/cache/git``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import EunomiaError
from .manifest import MANIFEST_NAME, Dependency, ManifestError, parse_dependencies
from .semver import SemverError, Version, parse_version
from .store import Store, sha256_hex

__all__ = ["EbpmError", "Fetched", "Fetcher", "GitRepo", "source_key"]

GIT_TIMEOUT = 120.0
PACKAGES_DIR = "packages"


class EbpmError(EunomiaError):
    """A dependency cannot be fetched, resolved, verified or installed."""


@dataclass(frozen=True)
class Fetched:
    """One resolved package: its exact source and bytes, and its own dependencies."""

    key: str                       # identity of the source, e.g. "git+git://host/x.git"
    version: str                   # "" when the source has none (a URL)
    commit: str                    # git only
    module: str
    sha256: str
    data: bytes
    name: str                      # the package's own name (its [package] name) for messages
    dependencies: tuple[Dependency, ...] = ()
    base: Path | None = None       # where its relative path dependencies start


def source_key(dep: Dependency, base: Path | None) -> str:
    if dep.kind == "path":
        if base is None:
            raise EbpmError(f"resolve {dep.name}: a path dependency inside a git or URL "
                            f"package cannot be fetched")
        return "path+" + str((base / dep.location).resolve())
    return f"{dep.kind}+{dep.location}"


def _run_git(args: list[str], *, cwd: Path | None = None, what: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              timeout=GIT_TIMEOUT, env=env, check=False)
    except FileNotFoundError:
        raise EbpmError(f"{what}: the git command is not installed") from None
    except subprocess.TimeoutExpired:
        raise EbpmError(f"{what}: git timed out after {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
        cause = lines[-1].removeprefix("fatal: ") if lines else f"exit {done.returncode}"
        raise EbpmError(f"{what}: {cause}")
    return done.stdout


class GitRepo:
    """A bare clone of one git URL in the cache."""

    def __init__(self, url: str, cache: Path) -> None:
        self.url = url
        self.path = cache / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")
        self.fetched = False

    def git(self, *args: str, what: str | None = None) -> str:
        return _run_git(["--git-dir", str(self.path), *args], what=what or f"git {self.url}")

    def update(self, *, offline: bool) -> None:
        """Clone or fetch (once per run); offline, only check the clone exists."""
        if self.path.is_dir():
            if offline or self.fetched:
                return
            self.git("fetch", "--quiet", "--prune", "--prune-tags", "--force", "origin",
                     "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
                     what=f"fetch {self.url}")
            self.fetched = True
            return
        if offline:
            raise EbpmError(f"fetch {self.url}: not in the cache and --offline was given")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=".clone-"))
        try:
            _run_git(["clone", "--quiet", "--bare", self.url, str(tmp / "repo")],
                     what=f"fetch {self.url}")
            try:
                os.rename(tmp / "repo", self.path)
            except OSError:
                if not self.path.is_dir():  # else another install cloned it first
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.fetched = True

    def versions(self) -> dict[Version, str]:
        """Release tags ``vX.Y.Z`` by version."""
        found: dict[Version, str] = {}
        for tag in self.git("tag", "--list", "v*").split():
            try:
                found[parse_version(tag)] = tag
            except SemverError:
                continue
        return found

    def commit(self, ref: str) -> str:
        return self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}",
                        what=f"fetch {self.url}: no {ref!r} in the repository").strip()

    def has_commit(self, commit: str) -> bool:
        try:
            self.git("cat-file", "-e", f"{commit}^{{commit}}")
        except EbpmError:
            return False
        return True

    def show(self, commit: str, path: str) -> bytes | None:
        done = subprocess.run(["git", "--git-dir", str(self.path), "show", f"{commit}:{path}"],
                              capture_output=True, timeout=GIT_TIMEOUT, check=False)
        return done.stdout if done.returncode == 0 else None

    def modules(self, commit: str) -> list[str]:
        out = self.git("ls-tree", "--name-only", f"{commit}:{PACKAGES_DIR}",
                       what=f"fetch {self.url}: no {PACKAGES_DIR}/ at {commit[:12]} "
                            f"(publish with `ebpm publish`)")
        return sorted(n.removesuffix(".package.json") for n in out.split()
                      if n.endswith(".package.json"))


def _pick_module(dep: Dependency, modules: list[str], where: str) -> str:
    if dep.module:
        if dep.module not in modules:
            raise EbpmError(f"fetch {dep.name}: no module {dep.module!r} in {where} "
                            f"(it has: {', '.join(modules) or 'none'})")
        return dep.module
    if dep.name in modules:
        return dep.name
    if len(modules) == 1:
        return modules[0]
    raise EbpmError(f"fetch {dep.name}: {where} has several modules "
                    f"({', '.join(modules) or 'none'}); say which with module = \"...\"")


def _own_dependencies(text: bytes | None, origin: str) -> tuple[str, tuple[Dependency, ...]]:
    if text is None:
        return "", ()
    try:
        manifest, deps = parse_dependencies(text.decode("utf-8"), origin=origin)
    except UnicodeDecodeError:
        raise ManifestError(f"read {origin}: not UTF-8 text") from None
    return manifest.package.name, deps


class Fetcher:
    """Fetches packages for the resolver; ``offline`` uses only the store and the cache."""

    def __init__(self, store: Store, *, offline: bool = False) -> None:
        self.store = store
        self.offline = offline
        self.repos: dict[str, GitRepo] = {}

    def repo(self, url: str) -> GitRepo:
        if url not in self.repos:
            self.repos[url] = GitRepo(url, self.store.git_cache)
        return self.repos[url]

    def git_versions(self, dep: Dependency) -> dict[Version, str]:
        repo = self.repo(dep.location)
        repo.update(offline=self.offline)
        return repo.versions()

    def git_commit(self, dep: Dependency, commit: str | None = None) -> str:
        """The commit a tag/branch/rev (or a locked ``commit``) names."""
        repo = self.repo(dep.location)
        if commit is not None and repo.path.is_dir() and repo.has_commit(commit):
            return commit
        repo.update(offline=self.offline)
        if commit is not None:
            if not repo.has_commit(commit):
                raise EbpmError(f"fetch {dep.location}: locked commit {commit[:12]} is gone "
                                f"from the repository (run `ebpm update {dep.name}`)")
            return commit
        ref = dep.rev or (f"refs/tags/{dep.tag}" if dep.tag else None) or \
            (f"refs/heads/{dep.branch}" if dep.branch else "HEAD")
        return repo.commit(ref)

    def fetch_git(self, dep: Dependency, commit: str, version: str) -> Fetched:
        repo = self.repo(dep.location)
        where = f"{dep.location} at {commit[:12]}"
        module = _pick_module(dep, repo.modules(commit), where)
        data = repo.show(commit, f"{PACKAGES_DIR}/{module}.package.json")
        if data is None:
            raise EbpmError(f"fetch {dep.name}: cannot read {module} from {where}")
        name, deps = _own_dependencies(repo.show(commit, MANIFEST_NAME),
                                       f"{dep.location}@{commit[:12]}:{MANIFEST_NAME}")
        if not version:
            try:
                version = str(parse_version(repo.git("describe", "--tags", "--exact-match",
                                                     commit).strip()))
            except EunomiaError:
                version = ""
        return Fetched(key=source_key(dep, None), version=version, commit=commit,
                       module=module, sha256=sha256_hex(data), data=data,
                       name=name or dep.name, dependencies=deps, base=None)

    def fetch_url(self, dep: Dependency, sha256: str | None) -> Fetched:
        data = self.store.read_blob(sha256) if sha256 else None
        if data is None:
            if self.offline:
                raise EbpmError(f"fetch {dep.location}: not in the store and --offline "
                                f"was given")
            from ..errors import ResolveError
            from ..resolve import fetch_url

            try:
                data = fetch_url(dep.location)
            except ResolveError as exc:
                raise EbpmError(str(exc)) from None
        digest = sha256_hex(data)
        if sha256 and digest != sha256:
            raise EbpmError(f"verify {dep.location}: sha256 mismatch: expected {sha256}, "
                            f"got {digest}")
        return Fetched(key=source_key(dep, None), version="", commit="",
                       module=dep.module or dep.name, sha256=digest, data=data,
                       name=dep.name)

    def fetch_path(self, dep: Dependency, base: Path) -> Fetched:
        target = (base / dep.location).resolve()
        if target.is_file():
            package, root = target, target.parent
        elif target.is_dir():
            root = target
            names = sorted(p.name.removesuffix(".package.json")
                           for p in (root / PACKAGES_DIR).glob("*.package.json"))
            if names:
                module = _pick_module(dep, names, str(root / PACKAGES_DIR))
                package = root / PACKAGES_DIR / f"{module}.package.json"
            else:
                choices = [root / f"{dep.module or dep.name}.package.json",
                           root / "package.json"]
                found = [p for p in choices if p.is_file()]
                if not found:
                    raise EbpmError(f"fetch {dep.name}: no built package in {root} (build it "
                                    f"with `ecli build {root}`)")
                package = found[0]
        else:
            raise EbpmError(f"fetch {dep.name}: {target}: no such file or directory")
        manifest_path = root / MANIFEST_NAME
        name, deps = _own_dependencies(manifest_path.read_bytes()
                                       if manifest_path.is_file() else None,
                                       str(manifest_path))
        version = ""
        if manifest_path.is_file():
            from .manifest import read_manifest

            version = read_manifest(manifest_path).package.version
        data = package.read_bytes()
        return Fetched(key=source_key(dep, base), version=version, commit="",
                       module=dep.module or dep.name, sha256=sha256_hex(data), data=data,
                       name=name or dep.name, dependencies=deps, base=root)
