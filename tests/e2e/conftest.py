"""e2e fixtures: packages compiled from tests/e2e/fixtures/*.bpf.c."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixture_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Packages compiled with our own builder from tests/e2e/fixtures/*.bpf.c, and from
    kernel-test programs the CLI tests reuse: those this kernel refuses (refused_*) and
    the perf event array one (events_perf)."""
    from eunomia_bpf.build import ToolNotFoundError, build_package

    out = tmp_path_factory.mktemp("fixture-packages")
    built: dict[str, Path] = {}
    progs = FIXTURES.parent.parent / "kernel" / "progs"
    shared = [*sorted(progs.glob("refused_*.bpf.c")), progs / "events_perf.bpf.c"]
    for source in [*sorted(FIXTURES.glob("*.bpf.c")), *shared]:
        name = source.name.removesuffix(".bpf.c")
        try:
            data = build_package(source)
        except ToolNotFoundError as exc:
            pytest.skip(f"cannot compile test programs: {exc}")
        path = out / f"{name}.package.json"
        path.write_bytes(data)
        built[name] = path
    return built
