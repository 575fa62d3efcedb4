"""Semantic versions and the ranges of ``ebpm.toml`` (pure).

A small module of our own rather than ``packaging``: PEP 440 knows neither ``^`` nor
``~`` and orders pre-releases differently from semver. Ranges, each a set of
``>=lower, <upper`` bounds (comma-separated parts must all hold)::

    ^1.2.3  >=1.2.3 <2.0.0     ^0.2.3 >=0.2.3 <0.3.0    ^0.0.3 >=0.0.3 <0.0.4
    ^1.2    >=1.2.0 <2.0.0     ^0.1   >=0.1.0 <0.2.0    ^0     >=0.0.0 <1.0.0
    ~1.2.3  >=1.2.3 <1.3.0     ~1.2   >=1.2.0 <1.3.0    ~1     >=1.0.0 <2.0.0
    1.2.3 or =1.2.3  exactly   1.2 (partial)  = ~1.2    >=1.2  <2.0  >1  <=1.4  *

Pre-releases (``1.0.0-rc.1``) match only a range that names that exact version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import EunomiaError

__all__ = ["Range", "SemverError", "Version", "parse_range", "parse_version"]

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_PARTIAL = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?$")
_PART = re.compile(r"^(\^|~|>=|<=|>|<|=)?\s*(.+)$")


class SemverError(EunomiaError):
    """A version or a version range is malformed."""


def _pre_key(pre: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # a release sorts after its pre-releases
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, _pre_key(self.pre))

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")


def parse_version(text: str) -> Version:
    """``1.2.3``, ``v1.2.3``, ``1.2.3-rc.1`` (build metadata is ignored)."""
    m = _VERSION.match(text.strip())
    if not m:
        raise SemverError(f"parse version {text!r}: not a version like 1.2.3")
    return Version(int(m[1]), int(m[2]), int(m[3]), m[4] or "")


@dataclass(frozen=True)
class Range:
    text: str
    lower: Version | None           # inclusive unless lower_open
    upper: Version | None           # exclusive unless upper_closed
    lower_open: bool = False
    upper_closed: bool = False
    exact: Version | None = None

    def matches(self, version: Version) -> bool:
        if version.pre and version != self.exact:
            return False
        if self.lower is not None and (version < self.lower or
                                       (self.lower_open and version == self.lower)):
            return False
        return self.upper is None or version < self.upper or \
            (self.upper_closed and version == self.upper)

    def best(self, versions: list[Version]) -> Version | None:
        """The highest of ``versions`` in this range."""
        return max((v for v in versions if self.matches(v)), default=None)

    def __str__(self) -> str:
        return self.text


def _intersect(a: Range, b: Range, text: str) -> Range:
    lower, lower_open = a.lower, a.lower_open
    if b.lower is not None and (lower is None or b.lower > lower or
                                (b.lower == lower and b.lower_open)):
        lower, lower_open = b.lower, b.lower_open
    upper, upper_closed = a.upper, a.upper_closed
    if b.upper is not None and (upper is None or b.upper < upper or
                                (b.upper == upper and not b.upper_closed)):
        upper, upper_closed = b.upper, b.upper_closed
    return Range(text, lower, upper, lower_open, upper_closed, a.exact or b.exact)


def _one(part: str, whole: str) -> Range:
    m = _PART.match(part)
    assert m is not None
    op, rest = m[1] or "", m[2].strip()
    v = _PARTIAL.match(rest)
    if not v:
        raise SemverError(f"parse version range {whole!r}: {rest!r} is not a version")
    nums = [int(x) for x in (v[1], v[2], v[3]) if x is not None]
    given = len(nums)
    major, minor, patch = (nums + [0, 0])[:3]
    base = Version(major, minor, patch, v[4] or "")
    if op in ("", "=") and given == 3:
        return Range(whole, base, base, upper_closed=True, exact=base)
    if op == "^":
        if major or given == 1:
            upper = Version(major + 1, 0, 0)
        elif minor or given == 2:
            upper = Version(0, minor + 1, 0)
        else:
            upper = Version(0, 0, patch + 1)
        return Range(whole, base, upper)
    if op in ("~", "", "="):
        upper = Version(major + 1, 0, 0) if given == 1 else Version(major, minor + 1, 0)
        return Range(whole, base, upper)
    if op == ">=":
        return Range(whole, base, None)
    if op == ">":
        if given < 3:  # >1.2 means past every 1.2.x
            return Range(whole, Version(major + 1, 0, 0) if given == 1
                         else Version(major, minor + 1, 0), None)
        return Range(whole, base, None, lower_open=True)
    if op == "<":
        return Range(whole, None, base)
    # "<=": a partial version includes all of its patches
    if given < 3:
        return Range(whole, None, Version(major + 1, 0, 0) if given == 1
                     else Version(major, minor + 1, 0))
    return Range(whole, None, base, upper_closed=True)


def parse_range(text: str) -> Range:
    """Parse a range (see the module docstring); ``*`` or ``""`` matches every release."""
    whole = text.strip()
    if whole in ("", "*"):
        return Range(whole or "*", None, None)
    parts = [p.strip() for p in whole.split(",")]
    if any(not p for p in parts):
        raise SemverError(f"parse version range {text!r}: empty part")
    result = _one(parts[0], whole)
    for part in parts[1:]:
        result = _intersect(result, _one(part, whole), whole)
    return result
