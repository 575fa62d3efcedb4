from __future__ import annotations

import pytest

from eunomia_bpf.ebpm.semver import SemverError, parse_range, parse_version

V = parse_version


@pytest.mark.parametrize(("text", "inside", "outside"), [
    ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^0.1", ["0.1.0", "0.1.7"], ["0.2.0", "0.0.9"]),
    ("^0", ["0.0.0", "0.9.9"], ["1.0.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("1.2.3", ["1.2.3"], ["1.2.4"]),
    ("0.1", ["0.1.4"], ["0.2.0"]),
    (">=1.2", ["1.2.0", "7.0.0"], ["1.1.9"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    ("<=1.4", ["1.4.9"], ["1.5.0"]),
    (">=1.0, <1.5", ["1.4.9"], ["1.5.0", "0.9.0"]),
    ("*", ["0.0.1", "9.0.0"], ["1.0.0-rc.1"]),
])
def test_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    r = parse_range(text)
    assert all(r.matches(V(v)) for v in inside)
    assert not any(r.matches(V(v)) for v in outside)


def test_ordering_and_best() -> None:
    assert V("1.0.0-rc.1") < V("1.0.0") < V("1.0.1") < V("1.10.0")
    assert V("1.0.0-alpha.2") < V("1.0.0-alpha.10") < V("1.0.0-beta")
    assert parse_range("^0.1").best([V("0.1.0"), V("0.1.2"), V("0.2.0")]) == V("0.1.2")
    assert parse_range("=1.0.0-rc.1").matches(V("1.0.0-rc.1"))


@pytest.mark.parametrize("bad", ["^one", "1.2.3.4", ">=", "1,,2"])
def test_bad_ranges(bad: str) -> None:
    with pytest.raises(SemverError, match="parse version range"):
        parse_range(bad)
