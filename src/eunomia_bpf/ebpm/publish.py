"""``ebpm publish``: build every module, commit the packages, tag ``vX.Y.Z``, push.

Consumers fetch ``packages/<module>.package.json`` at the tag, so they need no compiler.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_NAME, read_manifest
from .sources import PACKAGES_DIR, EbpmError, _run_git

__all__ = ["Published", "publish"]


@dataclass(frozen=True)
class Published:
    version: str
    tag: str
    commit: str
    modules: tuple[str, ...]
    remote_url: str      # "" when nothing was pushed


def publish(directory: Path, *, remote: str = "origin", push: bool = True) -> Published:
    from ..build import build_project

    root = Path(directory).resolve()
    manifest = read_manifest(root / MANIFEST_NAME)
    version = manifest.package.version
    tag = f"v{version}"

    def git(*args: str) -> str:
        return _run_git(["-C", str(root), *args], what=f"publish {tag}")

    git("rev-parse", "--git-dir")
    dirty = git("status", "--porcelain", "--untracked-files=no").strip()
    if dirty:
        raise EbpmError(f"publish {tag}: the work tree has uncommitted changes: "
                        f"{dirty.splitlines()[0].strip()}")
    if git("tag", "--list", tag).strip():
        raise EbpmError(f"publish {tag}: tag {tag} exists: raise [package] version first")
    out = Path(tempfile.mkdtemp(prefix="ebpm-publish-"))
    try:
        built = build_project(root, outdir=out)
        target = root / PACKAGES_DIR
        target.mkdir(exist_ok=True)
        for old in target.glob("*.package.json"):
            old.unlink()
        for package in built:
            shutil.copyfile(package.path, target / f"{package.name}.package.json")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    git("add", "--force", "--all", PACKAGES_DIR)
    git("commit", "--quiet", "--allow-empty", "-m", f"release {tag}")
    git("tag", "-a", tag, "-m", f"release {tag}")
    commit = git("rev-parse", "HEAD").strip()
    remote_url = ""
    if push:
        remotes = git("remote").split()
        if remote in remotes:
            remote_url = git("remote", "get-url", remote).strip()
            git("push", "--quiet", remote, "HEAD", f"refs/tags/{tag}")
    return Published(version, tag, commit, tuple(p.name for p in built), remote_url)
