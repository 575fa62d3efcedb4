"""``///`` doc comments: which declaration each documents, what it says, how it reaches
the runtime (spec, options, help), and clear errors for malformed ones."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from eunomia_bpf.args import encode_arguments, format_help
from eunomia_bpf.build import BuildError, compile_object, generate_meta, object_name
from eunomia_bpf.build._doc import apply_doc_comments, parse_doc_comments, read_doc_comments
from eunomia_bpf.package import dump_package, read_package
from eunomia_bpf.spec import ObjectSpec

FIXTURES = Path(__file__).parent / "fixtures"
ALL_TAGS = FIXTURES / "doc_all_tags.bpf.c"

needs_clang = pytest.mark.skipif(
    shutil.which("clang") is None or shutil.which("llvm-strip") is None,
    reason="clang/llvm-strip not installed (apt-get install clang llvm)")


def _skel(variables: tuple[str, ...] = (), maps: tuple[str, ...] = (),
          progs: tuple[str, ...] = ()) -> dict[str, Any]:
    """A bpf_skel as generate_meta writes it, for the names given."""
    return {
        "obj_name": "t_bpf",
        "progs": [{"name": p, "attach": "tc", "link": True} for p in progs],
        "maps": [{"name": m, "ident": m} for m in maps],
        "data_sections": [{"name": ".rodata",
                           "variables": [{"name": v, "type": "int"} for v in variables]}],
    }


def _apply(source: str, **names: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
    skel = _skel(**names)
    warnings = apply_doc_comments(skel, parse_doc_comments(source, filename="t.bpf.c"))
    return skel, warnings


def _line_of(path: Path, text: str) -> int:
    """The number of the first line of ``path`` that contains ``text``."""
    return next(number for number, line in enumerate(path.read_text().splitlines(), start=1)
                if text in line)


def _variable(skel: dict[str, Any], name: str) -> dict[str, Any]:
    entry: dict[str, Any] = next(v for v in skel["data_sections"][0]["variables"]
                                 if v["name"] == name)
    return entry


# --- which declaration a block documents ------------------------------------------------


def test_comments_strings_and_rulers_are_not_doc_comments() -> None:
    docs = read_doc_comments(ALL_TAGS)

    documented = {names: [text for _, text in block.lines] for names, block in docs.variables}
    assert set(documented) == {("targ_pid",), ("min_us",), ("failed_only",), ("stack_depth",),
                               ("prefix",), ("hists",), ("events",)}
    every_line = [text for names, block in docs.variables + docs.functions
                  for _, text in block.lines]
    assert not [line for line in every_line if "trap" in line or "member" in line
                or "statement" in line or "ruler" in line]
    assert docs.loose == ()


def test_programs_are_found_by_name_also_when_a_macro_makes_them() -> None:
    docs = read_doc_comments(ALL_TAGS)

    names = {names: block.line for names, block in docs.functions}
    assert names == {("wanted",): _line_of(ALL_TAGS, "/// @param pid the process"),
                     ("tc_ingress",): _line_of(ALL_TAGS, "/// @tchook"),
                     ("xdp_pass",): _line_of(ALL_TAGS, "/// @ifindex 1"),
                     ("BPF_PROG", "handle_exit"): _line_of(ALL_TAGS, "/// @custom")}
    assert docs.license is not None
    assert docs.license.line == _line_of(ALL_TAGS, "/// @brief")


def test_each_block_documents_the_declaration_right_after_it() -> None:
    docs = read_doc_comments(FIXTURES / "doc_placement.bpf.c")

    attached = {names: block.lines[0][1].strip() for names, block in docs.variables}
    assert attached[("after_blank",)].startswith("@description separated")
    assert attached[("two_blocks",)] == "kept: the block right above"
    assert attached[("first", "second")] == "two declarators: both documented"
    assert ("after_define",) not in attached
    assert ("init_list",) not in attached
    assert attached[()] in ("on a type definition: documents no variable",
                            '@sample {"interval": 1}')
    placement = FIXTURES / "doc_placement.bpf.c"
    assert [block.line for block in docs.loose] == [
        1, _line_of(placement, "/// dropped"), _line_of(placement, "/// before a macro")]


def test_crlf_line_endings_and_spliced_lines_are_read() -> None:
    raw = (FIXTURES / "doc_placement.bpf.c").read_bytes()
    assert b"\\\r\n" in raw  # the fixture keeps its CRLF line ends
    skel, _ = _apply(raw.decode(), variables=("crlf",))

    assert _variable(skel, "crlf")["description"] == (
        "Windows line endings and a trailing backslash joined onto the next line")


@pytest.mark.parametrize(("source", "documented"), [
    ('/// d\nSEC("xdp")\nint f(struct xdp_md *ctx) { return 2; }', "f"),
    ('SEC("xdp")\n/// d\nint f(struct xdp_md *ctx) { return 2; }', "f"),
    ('/// d\nSEC("kprobe/x")\nint BPF_KPROBE(f, int dfd, const char *name) { return 0; }', "f"),
    ('/// d\nSEC("tc") int f(void *ctx) { return 0; }\nint g(void) { return 1; }', "f"),
    ('/** d */\nSEC("tc") int f(void *ctx) { return 0; }', None),
    ('int x; ///< d\nSEC("tc") int f(void *ctx) { return 0; }', None),
    ('/// d\n#ifdef X\nSEC("tc") int f(void *ctx) { return 0; }\n#endif', None),
    ('SEC("tc") int f(void *ctx) {\n/// d\nreturn 0; }', None),
])
def test_program_placements(source: str, documented: str | None) -> None:
    skel, _ = _apply(source, progs=("f", "g"))

    got = [p["name"] for p in skel["progs"] if "description" in p]
    assert got == ([documented] if documented else [])


def test_a_block_above_the_struct_of_a_map_documents_the_map() -> None:
    skel, _ = _apply('/// @sample {"interval": 10}\nstruct {\n  /// m\n  __uint(type, 1);\n'
                     '} counts SEC(".maps"), *unused;\n', maps=("counts",))

    assert skel["maps"][0]["sample"] == {"interval": 10}
    assert "description" not in skel["maps"][0]


# --- what a block says ------------------------------------------------------------------


def test_plain_lines_are_the_description_and_blank_lines_split_paragraphs() -> None:
    skel, _ = _apply("/// First line\n///   wraps here.\n///\n/// Second paragraph.\n"
                     "const volatile int x = 0;", variables=("x",))

    assert _variable(skel, "x")["description"] == "First line wraps here.\n\nSecond paragraph."


def test_json_may_span_lines_and_prose_may_follow_it() -> None:
    skel, _ = _apply('/// @cmdarg {"long": "pid",\n///   "short": "p"}\n/// Process to trace\n'
                     "const volatile int x = 0;", variables=("x",))

    assert _variable(skel, "x")["cmdarg"] == {"long": "pid", "short": "p"}
    assert _variable(skel, "x")["description"] == "Process to trace"


@pytest.mark.parametrize(("line", "key", "value"), [
    ("@export_config no_export", "export_config", "no_export"),
    ("@note called when a process starts", "note", "called when a process starts"),
    ("@flag", "flag", True),
    ("@count 3", "count", 3),
    ('@export_config {"struct": "event"}', "export_config", {"struct": "event"}),
    ("@value -1", "value", -1),
    ("\\brief backslash commands work too", "brief", "backslash commands work too"),
])
def test_values_that_are_not_json_stay_text_as_with_ecc(line: str, key: str,
                                                        value: Any) -> None:
    skel, _ = _apply(f"/// {line}\nconst volatile int x = 0;", variables=("x",))

    assert _variable(skel, "x")[key] == value


def test_bad_json_names_the_file_and_the_line() -> None:
    skel = _skel(variables=("good", "targ_pid"))
    docs = read_doc_comments(FIXTURES / "doc_bad_json.bpf.c")

    with pytest.raises(BuildError) as caught:
        apply_doc_comments(skel, docs)

    message = str(caught.value)
    assert f"{FIXTURES / 'doc_bad_json.bpf.c'}:9: @cmdarg: bad JSON value" in message
    assert "delimiter" in message


@pytest.mark.parametrize(("block", "problem"), [
    ('@sample {"type": "log2_hist"}', r'3: @sample on variable x: needs "interval"'),
    ('@sample {"interval": 1, "type": "hist"}', "type must be log2_hist"),
    ('@cmdarg {"short": "pp"}', "short must be one character"),
    ('@cmdarg {"lnog": "pid"}', "unknown key 'lnog'"),
    ('@cmdarg {"long": "--pid"}', 'long must be an option name like "pid"'),
    ("@cmdarg pid", "@cmdarg: bad JSON value 'pid'"),
    ("@cmdarg", "@cmdarg needs a JSON value"),
    ('@cmdarg [1]', "must be a JSON object"),
    ('@ifindex "eth0"', 'must be an integer, not "eth0"'),
    ('@tchook {"attach_point": "INGRESS"}', "attach_point must be BPF_TC_INGRESS"),
    ("@name other", "the object decides the name"),
    ("@type long", "the object decides the type"),
    ('@cmdarg {}\n/// @cmdarg {}', "4: @cmdarg given twice (first on line 3)"),
])
def test_malformed_tags_are_build_errors_naming_the_line(block: str, problem: str) -> None:
    source = f"// header\n\n/// {block}\nconst volatile int x = 0;\n"

    with pytest.raises(BuildError, match="^read doc comments: t.bpf.c:") as caught:
        _apply(source, variables=("x",))
    assert problem in str(caught.value)


def test_doc_of_something_not_in_the_object_is_never_read() -> None:
    # A helper's Doxygen block may say anything: ecc ignores it, and so do we.
    skel, warnings = _apply('/// @cmdarg {broken\n/// @param a\n/// @param a\n'
                            "static int helper(int a) { return a; }", variables=("x",))

    assert _variable(skel, "x") == {"name": "x", "type": "int"}
    assert warnings == [("t.bpf.c:1: doc comment on function helper documents no BPF "
                         "program of the object; its @cmdarg is ignored")]


def test_a_lost_runtime_tag_warns_and_prose_does_not() -> None:
    placement = FIXTURES / "doc_placement.bpf.c"
    skel, warnings = _apply(placement.read_text(), variables=("after_blank", "two_blocks"))

    assert warnings == [
        (f"t.bpf.c:{_line_of(placement, '@sample')}: doc comment on a type definition "
         "documents no global variable or map of the object; its @sample is ignored"),
        ("t.bpf.c:1: doc comment documents no declaration (a directive or another comment "
         "block comes before the next one); its @tchook is ignored"),
    ]
    assert _variable(skel, "two_blocks")["description"] == "kept: the block right above"


def test_an_unterminated_block_comment_is_an_error() -> None:
    with pytest.raises(BuildError, match=r"t.bpf.c:2: unterminated /\* comment"):
        parse_doc_comments("int a;\nint b; /* no end\n", filename="t.bpf.c")


def test_a_missing_source_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="read doc comments: .*nothing.bpf.c"):
        read_doc_comments(tmp_path / "nothing.bpf.c")


# --- through the build, the package and the runtime -------------------------------------


@dataclass(frozen=True)
class Built:
    obj: bytes
    meta: dict[str, Any]


@pytest.fixture(scope="module")
def built() -> Built:
    if shutil.which("clang") is None or shutil.which("llvm-strip") is None:
        pytest.skip("clang/llvm-strip not installed (apt-get install clang llvm)")
    obj = compile_object(ALL_TAGS)
    return Built(obj, generate_meta(obj, obj_name=object_name(ALL_TAGS), source=ALL_TAGS))


@pytest.fixture(scope="module")
def spec(built: Built) -> ObjectSpec:
    return ObjectSpec.from_package(read_package(dump_package(built.obj, built.meta)))


@needs_clang
def test_meta_carries_every_tag_in_ecc_shapes(built: Built) -> None:
    skel = built.meta["bpf_skel"]
    variables = {v["name"]: {k: x for k, x in v.items() if k not in ("name", "type")}
                 for v in skel["data_sections"][0]["variables"]}
    maps = {m["name"]: {k: x for k, x in m.items() if k not in ("name", "ident", "mmaped")}
            for m in skel["maps"]}
    progs = {p["name"]: {k: x for k, x in p.items() if k not in ("name", "attach", "link")}
             for p in skel["progs"]}

    assert variables == {
        "targ_pid": {"description": "Process ID to trace (0: every process)"},
        "min_us": {"description": "Ignore shorter latencies",
                   "cmdarg": {"default": 5000, "short": "m", "long": "min-us",
                              "help": "Minimum latency"}},
        "failed_only": {"description": "Report failed calls only",
                        "cmdarg": {"short": "x", "long": "failed"}},
        "stack_depth": {"description": "Depth of the kernel stacks to keep", "value": 7},
        "prefix": {"description": 'A string with "/// quotes" and // slashes inside',
                   "unit": "ms"},
    }
    assert maps["hists"] == {"description": "Latency histogram",
                             "sample": {"interval": 1000, "type": "log2_hist",
                                        "unit": "usecs", "clear_map": True}}
    assert maps["events"] == {"export_config": "no_export"}
    assert progs == {
        "tc_ingress": {"description": "Classify packets",
                       "tchook": {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"},
                       "tcopts": {"handle": 1, "priority": 1}},
        "xdp_pass": {"ifindex": 1, "xdpopts": {"old_prog_fd": 0}, "flags": 2},
        "handle_exit": {"description": "Counts exits (a program made by a macro)",
                        "custom": {"anything": [1, 2, 3]}},
    }
    assert skel["doc"] == {"brief": "Trace everything doc comments can say",
                           "details": "Exits, packets and latencies, all at once.",
                           "version": "1.2.3", "description": "A description of the package."}


@needs_clang
def test_without_the_source_the_meta_is_the_objects_alone(built: Built) -> None:
    plain = generate_meta(built.obj, obj_name=object_name(ALL_TAGS))

    assert "doc" not in plain["bpf_skel"]
    assert all(set(v) == {"name", "type"}
               for v in plain["bpf_skel"]["data_sections"][0]["variables"])
    assert all(set(p) == {"name", "attach", "link"} for p in plain["bpf_skel"]["progs"])


@needs_clang
def test_a_helpers_doxygen_block_is_not_worth_a_warning(built: Built,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="eunomia_bpf.build"):
        generate_meta(built.obj, obj_name=object_name(ALL_TAGS), source=ALL_TAGS)

    assert caplog.records == []


@needs_clang
def test_the_runtime_sees_what_the_comments_say(spec: ObjectSpec) -> None:
    variables = {v.name: v for v in spec.variables}
    programs = {p.name: p for p in spec.programs}

    assert variables["targ_pid"].description == "Process ID to trace (0: every process)"
    assert dict(variables["min_us"].cmdarg) == {"default": 5000, "short": "m",
                                                "long": "min-us", "help": "Minimum latency"}
    assert variables["min_us"].default == 5000
    assert variables["stack_depth"].default == 7
    assert encode_arguments(spec, {})["stack_depth"] == (7).to_bytes(4, "little")
    assert spec.map("hists").sample == {"interval": 1000, "type": "log2_hist",
                                        "unit": "usecs", "clear_map": True}
    assert spec.map("events").export_config == "no_export"
    assert programs["tc_ingress"].params["tchook"] == {"ifindex": 1,
                                                       "attach_point": "BPF_TC_INGRESS"}
    assert programs["tc_ingress"].params["tcopts"] == {"handle": 1, "priority": 1}
    assert programs["xdp_pass"].params["ifindex"] == 1
    assert programs["xdp_pass"].params["xdpopts"] == {"old_prog_fd": 0}
    assert spec.doc["brief"] == "Trace everything doc comments can say"


@needs_clang
def test_help_shows_the_descriptions_and_option_names(spec: ObjectSpec) -> None:
    text = format_help(spec)
    # click wraps long lines; compare with whitespace collapsed
    flat = " ".join(text.split())

    assert "Trace everything doc comments can say" in flat
    assert "Exits, packets and latencies, all at once." in flat
    assert "--targ-pid" in flat and "Process ID to trace (0: every process)" in flat
    assert "-m, --min-us" in flat and "Minimum latency" in flat
    assert "--failed" in flat and "Report failed calls only" in flat
    assert "--stack-depth" in flat and "[default: 7]" in flat
