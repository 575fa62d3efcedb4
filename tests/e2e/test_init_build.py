"""``ecli init`` and ``ecli build`` as a developer uses them: a new project, make, run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from eunomia_bpf.package import read_package
from tests.support import ECLI, Ecli

REPO = Path(__file__).resolve().parents[2]

needs_clang = pytest.mark.skipif(
    shutil.which("clang") is None or shutil.which("llvm-strip") is None,
    reason="building packages needs clang and llvm-strip (apt-get install clang llvm)")

INIT_FILES = {".gitignore", "Makefile", "README.md", "ebpm.toml", "hello.bpf.c", "hello.h"}


def _ecli(args: Sequence[str], cwd: Path,
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ECLI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env=env)


def _init(tmp_path: Path, name: str = "hello") -> Path:
    done = _ecli(["init", name], tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path / name


def test_init_writes_a_complete_project(tmp_path: Path) -> None:
    project = _init(tmp_path)

    assert {p.name for p in project.iterdir()} == INIT_FILES
    manifest = (project / "ebpm.toml").read_text()
    assert 'name = "hello"' in manifest and 'source = "hello.bpf.c"' in manifest
    source = (project / "hello.bpf.c").read_text()
    assert '#include "hello.h"' in source
    assert "struct event *__eunomia_dummy_event_ptr" in source
    assert "/// Trace only" in source and "const volatile pid_t targ_pid" in source
    assert "ECLI ?= ecli" in (project / "Makefile").read_text()
    assert "package.json" in (project / ".gitignore").read_text().split()


def test_init_refuses_to_overwrite_and_writes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "hello"
    project.mkdir()
    (project / "README.md").write_text("mine\n")

    done = _ecli(["init", "hello"], tmp_path)

    assert done.returncode == 1
    assert done.stderr == "ecli: error: init hello: refusing to overwrite hello/README.md\n"
    assert [p.name for p in project.iterdir()] == ["README.md"]
    assert (project / "README.md").read_text() == "mine\n"


def test_init_into_another_directory(tmp_path: Path) -> None:
    done = _ecli(["init", "probe_2", "--dir", "somewhere/else"], tmp_path)

    assert done.returncode == 0, done.stderr
    written = {p.name for p in (tmp_path / "somewhere" / "else").iterdir()}
    assert "probe_2.bpf.c" in written and "probe_2.h" in written
    assert "#ifndef __PROBE_2_H" in (tmp_path / "somewhere/else/probe_2.h").read_text()


@pytest.mark.parametrize("name", ["9lives", "has space", "semi;colon", "a/b", ""])
def test_init_rejects_names_that_are_not_identifiers(tmp_path: Path, name: str) -> None:
    done = _ecli(["init", name], tmp_path)

    assert done.returncode == 1
    assert "a project name starts with a letter" in done.stderr
    assert list(tmp_path.iterdir()) == []


@needs_clang
def test_the_same_project_built_in_two_directories_gives_identical_packages(
        tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    first = _init(tmp_path / "one")
    second = tmp_path / "elsewhere" / "deeper" / "hello"
    shutil.copytree(first, second)

    one = _ecli(["build"], first)
    two = _ecli(["build", str(second)], tmp_path)

    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    a, b = (first / "package.json").read_bytes(), (second / "package.json").read_bytes()
    assert a == b
    assert str(tmp_path).encode() not in a
    digest = hashlib.sha256(a).hexdigest()
    assert one.stdout == f"package.json  {len(a)} bytes  sha256:{digest}\n"
    assert two.stdout.endswith(f"sha256:{digest}\n")


@needs_clang
def test_built_package_describes_the_template_program(tmp_path: Path) -> None:
    project = _init(tmp_path)
    assert _ecli(["build"], project).returncode == 0

    pkg = read_package((project / "package.json").read_bytes())

    assert pkg.name == "hello"
    assert [p["attach"] for p in pkg.bpf_skel["progs"]] == ["tp/syscalls/sys_enter_execve"]
    [event] = pkg.meta["export_types"]
    assert [m["name"] for m in event["members"]] == ["pid", "uid", "comm", "filename"]
    [rodata] = [s for s in pkg.bpf_skel["data_sections"] if s["name"] == ".rodata"]
    assert [v["name"] for v in rodata["variables"]] == ["targ_pid"]


@needs_clang
def test_ecc_form_with_header_output_dir_yaml_and_json_report(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples" / "opensnoop", tmp_path / "src")
    out = tmp_path / "out"

    done = _ecli(["build", "src/opensnoop.bpf.c", "src/opensnoop.h", "-o", str(out),
                  "--yaml", "--json"], tmp_path)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["name"] == "opensnoop"
    assert report["path"] == str(out / "package.yaml")
    data = (out / "package.yaml").read_bytes()
    assert report["size"] == len(data)
    pkg = read_package(data)
    assert report["sha256"] == pkg.digest
    bundled = read_package((REPO / "src/eunomia_bpf/packages/opensnoop.package.json")
                           .read_bytes())
    assert pkg.object == bundled.object
    assert not (tmp_path / "src" / "package.json").exists()


@needs_clang
def test_several_modules_build_to_one_package_each_with_progress(tmp_path: Path) -> None:
    for name in ("opensnoop", "execsnoop"):
        shutil.copytree(REPO / "examples" / name, tmp_path / name)
    (tmp_path / "ebpm.toml").write_text("""\
[package]
name = "tools"
version = "0.1.0"

[[module]]
name = "opens"
source = "opensnoop/opensnoop.bpf.c"
header = "opensnoop/opensnoop.h"

[[module]]
name = "execs"
source = "execsnoop/execsnoop.bpf.c"
cflags = "-DUNUSED_BY_THE_SOURCE=1"

[[module]]
name = "elsewhere"
path = "../prebuilt"
""")

    done = _ecli(["build", "--json", "-o", "dist"], tmp_path)

    assert done.returncode == 0, done.stderr
    reports = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["name"] for r in reports] == ["opens", "execs"]
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == \
        ["execs.package.json", "opens.package.json"]
    assert done.stderr.splitlines() == ["ecli: building opens (1/2)",
                                        "ecli: building execs (2/2)"]


@needs_clang
def test_extra_flags_and_include_dirs_reach_clang(tmp_path: Path) -> None:
    project = _init(tmp_path)
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "extra.h").write_text("#define EXTRA_PID 0\n")
    source = project / "hello.bpf.c"
    source.write_text(source.read_text().replace(
        '#include "hello.h"', '#include "hello.h"\n#include <extra.h>\n#ifndef MUST_BE_SET\n'
        '#error MUST_BE_SET missing\n#endif'))

    without = _ecli(["build"], project)
    with_flags = _ecli(["build", "-I", str(tmp_path / "inc"), "--cflags", "-DMUST_BE_SET=1"],
                       project)

    assert without.returncode == 1
    assert with_flags.returncode == 0, with_flags.stderr


@needs_clang
def test_compile_errors_show_clang_diagnostics_and_exit_1(tmp_path: Path) -> None:
    project = _init(tmp_path)
    source = project / "hello.bpf.c"
    source.write_text(source.read_text() + "\nint broken(void) { return no_such_symbol; }\n")

    done = _ecli(["build"], project)

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("ecli: error: compile hello.bpf.c: ")
    assert "use of undeclared identifier 'no_such_symbol'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "package.json").exists()


def test_missing_clang_says_how_to_install_it(tmp_path: Path) -> None:
    project = _init(tmp_path)
    env = {**os.environ, "PATH": str(tmp_path / "empty-bin")}

    done = _ecli(["build"], project, env=env)

    assert done.returncode == 1
    assert "clang not found" in done.stderr and "apt-get install clang llvm" in done.stderr


def test_manifest_errors_are_one_line(tmp_path: Path) -> None:
    project = _init(tmp_path)
    manifest = project / "ebpm.toml"
    manifest.write_text(manifest.read_text().replace("header =", "headr ="))

    done = _ecli(["build"], project)

    assert done.returncode == 1
    assert done.stderr.startswith("ecli: error: read ")
    assert "unknown key 'headr' in [[module]] 'hello'" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_directory_without_a_manifest_says_what_to_do(tmp_path: Path) -> None:
    done = _ecli(["build"], tmp_path)

    assert done.returncode == 1
    assert "no ebpm.toml here" in done.stderr and "ecli init" in done.stderr


@needs_clang
@pytest.mark.skipif(not Path("/sys/kernel/btf/vmlinux").is_file() or not shutil.which("bpftool"),
                    reason="--vmlinux host needs /sys/kernel/btf/vmlinux and bpftool")
def test_vmlinux_from_the_host_is_generated_once_into_the_cache(tmp_path: Path) -> None:
    project = _init(tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    done = _ecli(["build", "--vmlinux", "host"], project, env=env)

    assert done.returncode == 0, done.stderr
    [header] = (tmp_path / "cache" / "eunomia-bpf" / "vmlinux").glob("host-*/vmlinux.h")
    assert b"struct task_struct {" in header.read_bytes()
    read_package((project / "package.json").read_bytes())


@needs_clang
def test_a_vmlinux_file_of_any_name_gives_the_same_package_as_the_same_pinned_one(
        tmp_path: Path) -> None:
    from eunomia_bpf.build import vmlinux_include_dir

    project = _init(tmp_path)
    mine = tmp_path / "headers" / "kernel-6.18.h"
    mine.parent.mkdir()
    shutil.copy(vmlinux_include_dir() / "vmlinux.h", mine)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    pinned = _ecli(["build", "--json"], project, env=env)
    from_file = _ecli(["build", "--json", "--vmlinux", str(mine), "-o", "other"], project,
                      env=env)

    assert pinned.returncode == 0 and from_file.returncode == 0, pinned.stderr + from_file.stderr
    assert json.loads(pinned.stdout)["sha256"] == json.loads(from_file.stdout)["sha256"]
    missing = _ecli(["build", "--vmlinux", str(tmp_path / "headers")], project, env=env)
    assert missing.returncode == 1
    assert "holds no vmlinux.h" in missing.stderr


@pytest.mark.kernel
@needs_clang
@pytest.mark.skipif(shutil.which("make") is None, reason="the project's Makefile needs make")
def test_init_make_run_prints_the_events_it_promises(tmp_path: Path, ecli: type[Ecli],
                                                     no_leaks: object) -> None:
    project = _init(tmp_path)
    command = f"{sys.executable} -m eunomia_bpf.cli.ecli"  # as `make ECLI=...` takes it

    made = subprocess.run(["make", f"ECLI={command}"], cwd=project, capture_output=True,
                          text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stdout + made.stderr
    marker = tmp_path / f"hello-marker-{uuid.uuid4().hex[:8]}"
    shutil.copy("/bin/true", marker)

    run = ecli(["run", "--json", "--duration", "20", str(project / "package.json")])
    run.wait_attached()
    for _ in range(3):
        subprocess.run([str(marker)], check=True)
    time.sleep(0.5)
    out, err = run.stop()

    assert run.proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    mine = [e for e in events if e["filename"] == str(marker)]
    assert len(mine) == 3, f"expected 3 execs of {marker} in {events[:20]}"
    assert set(mine[0]) == {"pid", "uid", "comm", "filename"}
    assert all(e["uid"] == os.getuid() and e["pid"] > 0 for e in mine)
