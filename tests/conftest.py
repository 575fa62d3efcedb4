"""Shared fixtures: paths to the compatibility vectors and the bundled packages."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
VECTORS = REPO.parent / "shared" / "vectors" / "eunomia"


@pytest.fixture
def vectors() -> Path:
    if not VECTORS.is_dir():
        pytest.skip(f"compatibility vectors not found at {VECTORS} "
                    "(they sit beside the repo as shared/vectors in CI)")
    return VECTORS


def vector_path(name: str) -> Path:
    path = VECTORS / f"{name}.package.json"
    if not path.is_file():
        pytest.skip(f"compatibility vector {path} is absent")
    return path
