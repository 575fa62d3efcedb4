from __future__ import annotations

import pytest

from eunomia_bpf import ArgumentError
from eunomia_bpf.attach._link import meta_int


def test_meta_int_accepts_in_range_ints() -> None:
    assert meta_int(0, "tcopts.handle", "p") == 0
    assert meta_int(49, "sample_freq", "p", minimum=1) == 49


@pytest.mark.parametrize("value, minimum, words", [
    (-1, 0, "non-negative"), (0, 1, "positive"), (True, 0, "non-negative"),
    ("1", 0, "non-negative"), (1.5, 1, "positive"), (None, 0, "non-negative"),
])
def test_meta_int_refuses_with_one_line(value: object, minimum: int, words: str) -> None:
    with pytest.raises(ArgumentError, match=f"attach program p: x must be a {words} integer"):
        meta_int(value, "x", "p", minimum=minimum)
