"""Edits of ``ebpm.toml`` for ``ebpm get`` and ``ebpm remove``: one line each, so the
user's comments and layout stay as they were."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .._files import write_atomic
from .manifest import MANIFEST_NAME, _is_git, parse_dependencies
from .sources import EbpmError
from .store import sha256_hex

__all__ = ["add_dependency", "remove_dependency"]

_HEADER = re.compile(r"^\s*\[\s*dependencies\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


def _default_name(target: str) -> str:
    base = target.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".git", ".package.json", ".json"):
        base = base.removesuffix(suffix)
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", base).lstrip(".-") or "package"
    return name


def _inline(values: dict[str, str]) -> str:
    # JSON strings are valid TOML basic strings for the characters we accept
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"


def add_dependency(directory: Path, target: str, *, name: str | None = None,
                   version: str | None = None, module: str | None = None) -> str:
    """Add ``target`` (git URL, http(s) URL, path) to ``[dependencies]``; its name."""
    path = directory / MANIFEST_NAME
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        project = _default_name(str(directory.resolve()))
        text = f'[package]\nname = "{project}"\nversion = "0.1.0"\n'
    _, deps = parse_dependencies(text, origin=str(path))
    name = name or _default_name(target)
    if any(d.name == name for d in deps):
        raise EbpmError(f"get {target}: {name} is already a dependency "
                        f"(`ebpm remove {name}` first, or `ebpm update {name}`)")
    values: dict[str, str] = {}
    if _is_git(target):
        values["git"] = target
        if version:
            values["version"] = version
    elif target.startswith(("http://", "https://")):
        from ..errors import ResolveError
        from ..resolve import fetch_url

        try:
            data = fetch_url(target)
        except ResolveError as exc:
            raise EbpmError(str(exc)) from None
        values.update(url=target, sha256=sha256_hex(data))
    elif Path(target).exists():
        values["path"] = target
    else:
        raise EbpmError(f"get {target}: not a git URL, an http(s) URL or an existing path")
    if module:
        values["module"] = module
    line = f"{name} = {_inline(values)}"
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines) if _HEADER.match(ln)), None)
    if header is None:
        lines += ["", "[dependencies]", line]
    else:
        end = header + 1
        while end < len(lines) and not _ANY_HEADER.match(lines[end]):
            end += 1
        while end > header + 1 and not lines[end - 1].strip():
            end -= 1
        lines.insert(end, line)
    new = "\n".join(lines) + "\n"
    parse_dependencies(new, origin=str(path))  # never write a manifest we cannot read
    write_atomic(path, new.encode())
    return name


def remove_dependency(directory: Path, name: str) -> None:
    path = directory / MANIFEST_NAME
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    _, deps = parse_dependencies(text, origin=str(path))
    if not any(d.name == name for d in deps):
        raise EbpmError(f"remove {name}: not a dependency in {path}")
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines) if _HEADER.match(ln)), None)
    key = re.compile(rf"""^\s*(["']?){re.escape(name)}\1\s*=\s*\{{.*\}}\s*(#.*)?$""")
    if header is not None:
        for i in range(header + 1, len(lines)):
            if _ANY_HEADER.match(lines[i]):
                break
            if key.match(lines[i]):
                del lines[i]
                write_atomic(path, ("\n".join(lines) + "\n").encode())
                return
    raise EbpmError(f"remove {name}: only one-line entries of [dependencies] can be "
                    f"removed; edit {path} by hand")
