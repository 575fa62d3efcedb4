from __future__ import annotations

import pytest

from eunomia_bpf.ebpm.lock import LockEntry, LockError, dump_lock, parse_lock

ENTRY = LockEntry(name="hello", source="git+git://h/p.git", version="0.1.0", commit="a" * 40,
                  module="hello", sha256="b" * 64, exposed=True, requested_by=("z", "app"))


def test_round_trip_is_sorted_and_stable() -> None:
    other = LockEntry("abc", "url+http://h/x.json", "", "", "abc", "c" * 64, False, ("app",))
    text = dump_lock([ENTRY, other])
    assert text == dump_lock([other, ENTRY])
    assert text.index('name = "abc"') < text.index('name = "hello"')
    back = parse_lock(text)
    assert back[1] == LockEntry(**{**ENTRY.__dict__, "requested_by": ("app", "z")})


@pytest.mark.parametrize(("text", "message"), [
    ("version = 2\n", "unsupported lock version 2"),
    ("version = 1\n[[package]]\nname = 1\n", "name must be a string"),
    ("version = [\n", "invalid TOML"),
])
def test_bad_locks(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        parse_lock(text)
