"""ebpm.toml: what a project says, and one clear error (with its line) when it is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eunomia_bpf.ebpm import Manifest, ManifestError, Module, parse_manifest, read_manifest

TEMPLATE = (Path(__file__).resolve().parents[2] / "src" / "eunomia_bpf" / "build"
            / "templates" / "ebpm.toml.in")

GOOD = """\
[package]
name = "tools"
version = "1.2.3"
description = "Some tracing tools"
license = "MIT"
authors = ["A. Person <a@example.org>"]

[[module]]
name = "opensnoop"
source = "opensnoop/opensnoop.bpf.c"
header = "opensnoop/opensnoop.h"
cflags = ["-DDEBUG", "-Wall"]
include_dirs = ["include"]

[[module]]
name = "execsnoop"
source = "execsnoop.bpf.c"
cflags = "-DX=1 '-DY=two words'"
"""


def test_a_full_manifest_is_read_into_its_fields() -> None:
    manifest = parse_manifest(GOOD)

    assert manifest.package.name == "tools"
    assert manifest.package.version == "1.2.3"
    assert manifest.package.license == "MIT"
    assert manifest.package.authors == ("A. Person <a@example.org>",)
    first, second = manifest.modules
    assert first == Module(name="opensnoop", source="opensnoop/opensnoop.bpf.c",
                           header="opensnoop/opensnoop.h", cflags=("-DDEBUG", "-Wall"),
                           include_dirs=("include",))
    assert second.header is None
    assert second.cflags == ("-DX=1", "-DY=two words")  # a string is split like a shell
    assert manifest.buildable_modules == manifest.modules
    assert dict(manifest.dependencies) == {}


def test_the_init_template_is_a_valid_manifest() -> None:
    manifest = parse_manifest(TEMPLATE.read_text().replace("{{name}}", "hello"))

    assert manifest.package.name == "hello"
    assert manifest.package.version == "0.1.0"
    assert [m.source for m in manifest.modules] == ["hello.bpf.c"]


def test_dependencies_and_modules_built_elsewhere_are_kept_for_the_package_manager() -> None:
    manifest = parse_manifest("""\
[package]
name = "app"
version = "0.1.0"

[[module]]
name = "opensnoop"
path = "../opensnoop"

[[module]]
name = "runqlat"
version = "^1.0"
registry = "main"

[dependencies]
opensnoop = "1.0"
bootstrap = { git = "https://example.org/bootstrap.git", rev = "abc" }
""")

    assert [m.buildable for m in manifest.modules] == [False, False]
    assert dict(manifest.modules[0].reference) == {"path": "../opensnoop"}
    assert dict(manifest.modules[1].reference) == {"version": "^1.0", "registry": "main"}
    assert manifest.buildable_modules == ()
    assert manifest.dependencies["bootstrap"]["rev"] == "abc"


def test_a_package_without_modules_is_valid() -> None:
    manifest = parse_manifest('[package]\nname = "x"\nversion = "0.0.1"\n')
    assert manifest == Manifest(package=manifest.package)


def _error(text: str) -> str:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text, origin="proj/ebpm.toml")
    message = str(caught.value)
    assert "\n" not in message  # one line for the CLI
    return message


def test_bad_toml_says_line_and_column() -> None:
    message = _error('[package]\nname = "x"\nversion = 0.1.0\n')

    assert message.startswith("read proj/ebpm.toml: invalid TOML:")
    assert "line 3" in message and "column" in message


def test_unknown_key_is_named_with_its_table_and_line() -> None:
    message = _error('[package]\nname = "x"\nversion = "0.1.0"\nlicence = "MIT"\n')

    assert message == ("read proj/ebpm.toml: line 4: unknown key 'licence' in [package] "
                       "(expected one of: name, version, description, license, authors)")


def test_unknown_key_in_the_third_module_points_at_that_module() -> None:
    message = _error(GOOD + '\n[[module]]\nname = "third"\nsource = "t.bpf.c"\nsrc = "x"\n')

    assert "unknown key 'src' in [[module]] 'third'" in message
    assert "line 23:" in message


def test_unknown_top_level_table_is_named() -> None:
    message = _error('[package]\nname = "x"\nversion = "0.1.0"\n\n[modules]\nname = "y"\n')

    assert "line 5: unknown table or key 'modules'" in message


@pytest.mark.parametrize(("text", "expected"), [
    ('[[module]]\nname = "m"\nsource = "m.bpf.c"\n', "missing the [package] table"),
    ('[package]\nname = "x"\n', "line 1: missing required key 'version' in [package]"),
    ('[package]\nversion = "0.1.0"\n', "missing required key 'name' in [package]"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[[module]]\nsource = "a.bpf.c"\n',
     "line 4: missing required key 'name' in [[module]] #1"),
    ('[package]\nname = "x"\nversion = "0.1.0"\n[[module]]\nname = "m"\nheader = "m.h"\n',
     "missing required key 'source' in [[module]] 'm'"),
])
def test_missing_required_keys_are_named(text: str, expected: str) -> None:
    assert expected in _error(text)


HEAD = '[package]\nname = "x"\nversion = "0.1.0"\n'
MODULE = HEAD + '[[module]]\nname = "m"\nsource = "m.bpf.c"\n'


@pytest.mark.parametrize(("text", "expected"), [
    ('[package]\nname = 3\nversion = "0.1.0"\n',
     "line 2: [package] name must be a string, not an integer"),
    ('[package]\nname = "x"\nversion = "one"\n', "version 'one' is not a version like 0.1.0"),
    ('[package]\nname = "a b"\nversion = "0.1.0"\n', "name 'a b' must be letters"),
    (MODULE + "cflags = 3\n",
     "line 7: [[module]] 'm' cflags must be a string or an array of strings, not an integer"),
    (MODULE + 'include_dirs = ["a", 1]\n', "include_dirs must be an array of strings"),
    (HEAD + '[module]\nname = "m"\n', "write [[module]], not [module]"),
    ('package = "x"\n', "line 1: package must be a table, not a string"),
    (HEAD + "dependencies = 1\n", "unknown key 'dependencies' in [package]"),
    ("dependencies = 1\n" + HEAD, "line 1: dependencies must be a table"),
    (MODULE + '[[module]]\nname = "m"\nsource = "b.bpf.c"\n',
     "line 8: two modules are named 'm'"),
])
def test_wrong_types_and_values_are_explained(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_read_manifest_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        read_manifest(tmp_path / "ebpm.toml")
    (tmp_path / "ebpm.toml").write_bytes(b"\xff\xfe[package]")
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(tmp_path / "ebpm.toml")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('[]"=\n .#abcmodulepackagenameversion0123,{}')),
               max_size=120))
def test_any_text_gives_a_manifest_or_a_manifest_error(text: str) -> None:
    try:
        parse_manifest(text)
    except ManifestError:
        pass
