"""Registers the shared fixtures (tests/support.py) for tests/ and examples/."""

from tests.support import ecli, no_leaks, vectors  # noqa: F401
