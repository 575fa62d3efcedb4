"""``///`` doc comments of a BPF C source, merged into the package meta as ecc does.

The public ecc asks libclang which declaration each documentation comment belongs to and
copies what it says into ``bpf_skel``. We get the same answer from the source text alone,
in about a millisecond instead of a clang parse of ``vmlinux.h``:

1. a scanner splits the text into ``///`` lines, preprocessor directives and C tokens,
   so that comments inside strings, ``//`` and ``/* */`` comments and ``////`` rulers
   never count;
2. consecutive ``///`` lines form a block; a block belongs to the top-level declaration
   that starts next, unless a directive or another block comes first (clang's rule);
3. each declaration yields the names it declares (``x`` of ``const volatile int x = 0;``,
   ``rb`` of ``struct {...} rb SEC(".maps");``, ``f`` of ``int f(...) {...}`` and of
   ``int BPF_PROG(f, ...) {...}``), matched against the meta by name like ecc does.

A block's plain lines are its description; ``@tag value`` lines are fields whose value is
JSON (ecc keeps non-JSON words as a string, and so do we, except where a tag must hold
JSON). Blocks are read only when they belong to something in the meta, so Doxygen comments
on helpers never fail a build.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import BuildError

__all__ = ["DocBlock", "SourceDocs", "apply_doc_comments", "parse_doc_comments",
           "read_doc_comments"]

# One C token (or comment, or blank) at a time; the order of the alternatives matters.
_TOKEN = re.compile(r"""
    (?P<newline>\n)
  | (?P<space>[ \t\f\v]+ | \\\n)
  | (?P<line_comment>//(?:[^\n\\]|\\.)*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<open_comment>/\*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"?)
  | (?P<char>'(?:[^'\\\n]|\\.)*'?)
  | (?P<ident>[A-Za-z_]\w*)
  | (?P<number>\.?\d(?:[eEpP][+-]|[\w.])*)
  | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)

# A whole directive: up to the end of its (possibly spliced) line, comments and strings
# included, so that neither a quote nor a `/*` inside it confuses the scanner.
_DIRECTIVE = re.compile(r"""
    \#(?: [^\n\\/"']
        | \\.
        | /\*.*?\*/
        | /(?![/*])
        | "(?:[^"\\\n]|\\.)*"?
        | '(?:[^'\\\n]|\\.)*'?
      )*
    (?://(?:[^\n\\]|\\.)*)?
""", re.VERBOSE | re.DOTALL)

_SPLICE = re.compile(r"[ \t]*\\\n[ \t]*")
_TAG = re.compile(r"[@\\]([A-Za-z_]\w*)\s*(.*)")
_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
# Identifiers after which no declarator name comes (attributes, sections, asm labels).
_NOT_NAMES = frozenset({"SEC", "__attribute__", "__attribute", "__section", "asm", "__asm__",
                        "__asm", "__weak", "__hidden", "__ksym", "__kconfig"})
_C_KEYWORDS = frozenset({"void", "int", "char", "short", "long", "unsigned", "signed",
                         "const", "volatile", "struct", "union", "enum", "float", "double",
                         "_Bool", "bool"})

# Tags whose text is prose, never JSON (clang's block commands that ecc stores as text).
_TEXT_TAGS = frozenset({"brief", "details", "version", "description"})
# Tags that must hold JSON; a bare word there is a mistake, not a string.
_JSON_TAGS = frozenset({"cmdarg", "sample", "tchook", "tcopts", "xdpopts", "ifindex", "value"})
# Tags the runtime acts on: losing one to a misplaced comment deserves a warning.
_RUNTIME_TAGS = _JSON_TAGS | {"export_config"}
# Keys the object itself decides; a tag must not replace them.
_RESERVED = {
    "variable": frozenset({"name", "type"}),
    "map": frozenset({"name", "ident", "mmaped"}),
    "program": frozenset({"name", "attach"}),
    "package": frozenset(),
}


@dataclass(frozen=True)
class _Token:
    kind: str  # doc | directive | ident | number | string | char | punct
    text: str
    line: int


@dataclass(frozen=True)
class DocBlock:
    """Consecutive ``///`` lines: ``(line number, text after the slashes)``."""

    lines: tuple[tuple[int, str], ...]

    @property
    def line(self) -> int:
        return self.lines[0][0]


@dataclass(frozen=True)
class _Declaration:
    names: tuple[str, ...]
    is_function: bool
    section: str | None
    line: int


@dataclass(frozen=True)
class SourceDocs:
    """The doc blocks of one source, by what they document."""

    filename: str
    #: blocks on variables and maps: (names declared, block)
    variables: tuple[tuple[tuple[str, ...], DocBlock], ...] = ()
    #: blocks on function definitions: (candidate program names, block)
    functions: tuple[tuple[tuple[str, ...], DocBlock], ...] = ()
    #: the block on ``char LICENSE[] SEC("license")``: the package doc
    license: DocBlock | None = None
    #: blocks followed by no declaration (a directive, another block, end of file)
    loose: tuple[DocBlock, ...] = field(default=())


def _error(filename: str, line: int, message: str) -> BuildError:
    return BuildError(f"read doc comments: {filename}:{line}: {message}")


def _tokens(text: str, filename: str) -> Iterator[_Token]:
    pos, line, at_line_start = 0, 1, True
    while pos < len(text):
        if at_line_start and text[pos] == "#":
            match = _DIRECTIVE.match(text, pos)
            assert match is not None  # `#` alone matches
            value = match.group()
            yield _Token("directive", value, line)
            at_line_start = False
        else:
            match = _TOKEN.match(text, pos)
            assert match is not None  # `.` with DOTALL matches anything
            kind = match.lastgroup
            value = match.group()
            if kind == "newline":
                at_line_start = True
            elif kind == "open_comment":
                raise _error(filename, line, "unterminated /* comment")
            elif kind == "line_comment":
                if value.startswith("///") and not value.startswith(("////", "///<")):
                    yield _Token("doc", _SPLICE.sub(" ", value[3:]), line)
            elif kind not in ("space", "block_comment"):
                at_line_start = False
                assert kind is not None
                yield _Token(kind, value, line)
        line += value.count("\n")
        pos = match.end()


def _string_value(literal: str) -> str:
    body = literal[1:-1] if literal.endswith('"') and len(literal) > 1 else literal[1:]
    return body.replace('\\"', '"').replace("\\\\", "\\")


def _section(tokens: Sequence[_Token]) -> str | None:
    for i, tok in enumerate(tokens[:-3]):
        if tok.text in ("SEC", "section") and tokens[i + 1].text == "(" \
                and tokens[i + 2].kind == "string":
            return _string_value(tokens[i + 2].text)
    return None


def _function_names(tokens: Sequence[_Token]) -> tuple[str, ...]:
    """``f`` of ``int f(...)``, and ``f`` of ``int BPF_PROG(f, ...)`` (macro-made names)."""
    depth = 0
    for i, tok in enumerate(tokens):
        if tok.text == "(" and depth == 0 and i > 0 and tokens[i - 1].kind == "ident" \
                and tokens[i - 1].text not in _NOT_NAMES:
            names = [tokens[i - 1].text]
            if i + 2 < len(tokens) and tokens[i + 1].kind == "ident" \
                    and tokens[i + 2].text in (",", ")") \
                    and tokens[i + 1].text not in _C_KEYWORDS:
                names.append(tokens[i + 1].text)
            return tuple(names)
        if tok.text in _OPENERS:
            depth += 1
        elif tok.text in _CLOSERS:
            depth -= 1
    return ()


def _declarator_names(tokens: Sequence[_Token]) -> tuple[str, ...]:
    """Names a declaration without a body declares (none for a bare type definition)."""
    if not tokens or tokens[0].text == "typedef":
        return ()
    names: list[str] = []
    depth, in_initializer, stopped = 0, False, False
    last: str | None = None
    for tok in tokens:
        if tok.text in _OPENERS:
            if depth == 0 and tok.text == "{" and not in_initializer:
                last = None  # `struct x {`: what came before names a type, not a variable
            depth += 1
            continue
        if tok.text in _CLOSERS:
            depth -= 1
            continue
        if depth > 0:
            continue
        if tok.text in (",", ";"):
            if last is not None and not in_initializer:
                names.append(last)
            last, in_initializer, stopped = None, False, False
        elif in_initializer:
            continue
        elif tok.text == "=":
            if last is not None:
                names.append(last)
            last, in_initializer = None, True
        elif tok.kind == "ident":
            if tok.text in _NOT_NAMES:
                stopped = True
            elif not stopped:
                last = tok.text
    return tuple(names)


def _declaration(tokens: Sequence[_Token], is_function: bool) -> _Declaration:
    names = _function_names(tokens) if is_function else _declarator_names(tokens)
    return _Declaration(names=names, is_function=is_function, section=_section(tokens),
                        line=tokens[0].line)


def _scan(text: str, filename: str) -> tuple[list[tuple[DocBlock, _Declaration]],
                                              list[DocBlock]]:
    """Pair every doc block with the top-level declaration that follows it.

    Like clang, the block closest to the declared name wins: one between ``SEC("xdp")``
    and ``int f(...)`` counts, one inside a struct body or after ``=`` does not.
    """
    attached: list[tuple[DocBlock, _Declaration]] = []
    loose: list[DocBlock] = []
    pending: list[tuple[int, str]] = []
    owner: list[tuple[int, str]] = []  # the block of the declaration being read
    current: list[_Token] = []
    stack: list[str] = []
    is_function = header_done = False

    def finish() -> None:
        nonlocal owner, is_function, header_done
        if owner:
            attached.append((DocBlock(tuple(owner)), _declaration(current, is_function)))
        current.clear()
        stack.clear()
        owner, is_function, header_done = [], False, False

    for tok in _tokens(text.replace("\r\n", "\n"), filename):
        if tok.kind == "doc":
            if current and (stack or header_done):
                continue  # documents a member or a statement: not ours
            if pending and pending[-1][0] == tok.line - 1:
                pending.append((tok.line, tok.text))
            else:
                if pending:
                    loose.append(DocBlock(tuple(pending)))
                pending = [(tok.line, tok.text)]
            continue
        if tok.kind == "directive":
            if pending:
                loose.append(DocBlock(tuple(pending)))
                pending = []
            continue
        if pending:
            owner, pending = pending, []
        current.append(tok)
        if tok.text in _OPENERS:
            if tok.text == "{" and not stack and len(current) > 1 and current[-2].text == ")":
                is_function = True
            header_done = header_done or (tok.text == "{" and not stack)
            stack.append(_OPENERS[tok.text])
        elif tok.text in _CLOSERS:
            if stack and stack[-1] == tok.text:
                stack.pop()
            if not stack and is_function and tok.text == "}":
                finish()
        elif tok.text == ";" and not stack:
            finish()
        elif tok.text == "=" and not stack:
            header_done = True
    if current:
        finish()
    if pending:
        loose.append(DocBlock(tuple(pending)))
    return attached, loose


def parse_doc_comments(text: str, *, filename: str = "<source>") -> SourceDocs:
    """Find the doc blocks of a BPF C source and what each one documents."""
    attached, loose = _scan(text, filename)
    variables: list[tuple[tuple[str, ...], DocBlock]] = []
    functions: list[tuple[tuple[str, ...], DocBlock]] = []
    license_block: DocBlock | None = None
    for block, decl in attached:
        if decl.is_function:
            functions.append((decl.names, block))
        elif decl.section == "license" or "LICENSE" in decl.names:
            license_block = block
        else:
            variables.append((decl.names, block))
    return SourceDocs(filename=filename, variables=tuple(variables), functions=tuple(functions),
                      license=license_block, loose=tuple(loose))


def read_doc_comments(source: Path) -> SourceDocs:
    try:
        text = Path(source).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise BuildError(f"read doc comments: {source}: {exc.strerror}") from None
    return parse_doc_comments(text, filename=str(source))


# --- the fields of one block ------------------------------------------------------------


def _is_tag(text: str) -> bool:
    return _TAG.match(text) is not None


def _json_value(tag: str, first: str, more: Sequence[tuple[int, str]], filename: str,
                line: int) -> tuple[Any, int]:
    """The JSON value starting at ``first``, continued on as many lines as it needs."""
    text = first
    try:
        return json.loads(text), 0
    except json.JSONDecodeError as exc:
        error = exc
    for used, (_, extra) in enumerate(more, start=1):
        text += "\n" + extra
        try:
            return json.loads(text), used
        except json.JSONDecodeError as exc:
            error = exc
    raise _error(filename, line + error.lineno - 1,
                 f"@{tag}: bad JSON value {first!r}: {error.msg} (column {error.colno})")


def _block_fields(block: DocBlock, filename: str) -> tuple[dict[str, Any], dict[str, int]]:
    """``{tag: value}`` plus ``description``; and the line of every tag, for messages."""
    fields: dict[str, Any] = {}
    where: dict[str, int] = {}
    paragraphs: list[list[str]] = [[]]
    lines = [(number, text.strip()) for number, text in block.lines]
    i = 0
    while i < len(lines):
        number, text = lines[i]
        match = _TAG.match(text)
        if not text or match is None:
            if text:
                paragraphs[-1].append(text)
            elif paragraphs[-1]:
                paragraphs.append([])
            i += 1
            continue
        tag, rest = match.group(1), match.group(2).strip()
        more: list[tuple[int, str]] = []
        for later in lines[i + 1:]:
            if not later[1] or _is_tag(later[1]):
                break
            more.append(later)
        if tag in fields and tag != "description":
            raise _error(filename, number, f"@{tag} given twice (first on line {where[tag]})")
        value: Any
        if tag in _TEXT_TAGS:
            value, used = " ".join([rest, *(t for _, t in more)]).strip(), len(more)
        elif not rest:
            if tag in _JSON_TAGS:
                raise _error(filename, number, f"@{tag} needs a JSON value")
            value, used = True, 0  # a bare `@flag`
        elif tag in _JSON_TAGS or rest[0] in "{[\"":
            value, used = _json_value(tag, rest, more, filename, number)
        else:
            try:
                value, used = json.loads(rest), 0  # numbers, true/false/null
            except json.JSONDecodeError:
                # ecc's rule: what is not JSON is kept as text
                value, used = " ".join([rest, *(t for _, t in more)]), len(more)
        if tag == "description":
            if value:
                paragraphs.append([value])
                paragraphs.append([])
        else:
            fields[tag] = value
            where[tag] = number
        # lines after a complete JSON value go on with the description
        for _, text_after in more[used:]:
            paragraphs[-1].append(text_after)
        i += 1 + len(more)
    description = "\n\n".join(" ".join(p) for p in paragraphs if p)
    if description:
        fields["description"] = description
    return fields, where


def _shape_problem(tag: str, value: Any) -> str | None:
    """What is wrong with the value of a tag the runtime reads, or None."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    if tag in ("cmdarg", "sample", "tchook", "tcopts", "xdpopts") and not isinstance(value, dict):
        return f"must be a JSON object, not {json.dumps(value)}"
    if tag == "cmdarg":
        unknown = sorted(set(value) - {"default", "long", "short", "help"})
        if unknown:
            return f"unknown key {unknown[0]!r} (known: default, help, long, short)"
        for key in ("long", "short", "help"):
            if key in value and not isinstance(value[key], str):
                return f"{key} must be a string"
        if "short" in value and len(value["short"]) != 1:
            return f"short must be one character, not {value['short']!r}"
        if "long" in value and not re.fullmatch(r"[A-Za-z0-9][\w-]*", value["long"]):
            return f"long must be an option name like \"pid\", not {value['long']!r}"
    elif tag == "sample":
        if not is_int(value.get("interval")) or value["interval"] < 0:
            return "needs \"interval\": milliseconds between samples (a non-negative integer)"
        if value.get("type", "default_kv") not in ("log2_hist", "linear_hist", "default_kv"):
            return f"type must be log2_hist, linear_hist or default_kv, not {value['type']!r}"
        if "unit" in value and not isinstance(value["unit"], str):
            return "unit must be a string"
        if "clear_map" in value and not isinstance(value["clear_map"], bool):
            return "clear_map must be true or false"
    elif tag == "tchook":
        if "ifindex" in value and not is_int(value["ifindex"]):
            return "ifindex must be an integer"
        point = value.get("attach_point", "BPF_TC_INGRESS")
        if point not in ("BPF_TC_INGRESS", "BPF_TC_EGRESS", "BPF_TC_CUSTOM"):
            return f"attach_point must be BPF_TC_INGRESS or BPF_TC_EGRESS, not {point!r}"
    elif tag == "tcopts":
        for key in ("handle", "priority"):
            if key in value and not is_int(value[key]):
                return f"{key} must be an integer"
    elif tag == "ifindex" and not is_int(value):
        return f"must be an integer, not {json.dumps(value)}"
    return None


def _fields_for(block: DocBlock, kind: str, name: str, filename: str) -> dict[str, Any]:
    fields, where = _block_fields(block, filename)
    for tag, value in fields.items():
        line = where.get(tag, block.line)
        if tag in _RESERVED[kind]:
            raise _error(filename, line, f"@{tag} on {kind} {name}: the object decides "
                                         f"the {tag}, a doc comment cannot replace it")
        problem = _shape_problem(tag, value)
        if problem is not None:
            raise _error(filename, line, f"@{tag} on {kind} {name}: {problem}")
    return fields


# --- merging into the meta --------------------------------------------------------------


def apply_doc_comments(bpf_skel: dict[str, Any], docs: SourceDocs) -> list[str]:
    """Merge ``docs`` into ``bpf_skel`` in place, as ecc does; return warnings.

    Variables get ``description``/``cmdarg``/``value``, maps ``sample``/``export_config``,
    programs ``tchook``/``tcopts``/``ifindex``/``xdpopts``; every other tag is kept under
    its own name. The license's block becomes ``doc`` (``brief``, ``details``,
    ``version``, ``description``). A warning names each block that documents nothing the
    meta holds: ecc drops those silently, which hides a misplaced ``@tchook``.
    """
    filename = docs.filename
    warnings: list[str] = []
    variables = {v["name"]: v for section in bpf_skel.get("data_sections") or []
                 for v in section.get("variables") or []}
    maps = {m["name"]: m for m in bpf_skel.get("maps") or []}
    programs = {p["name"]: p for p in bpf_skel.get("progs") or []}

    def ignored(block: DocBlock, what: str) -> None:
        # prose or @param on a helper is ordinary documentation; a lost @tchook is a mistake
        tags = {m.group(1) for _, text in block.lines if (m := _TAG.match(text.strip()))}
        if tags & _RUNTIME_TAGS:
            warnings.append(f"{filename}:{block.line}: doc comment {what}; "
                            f"its @{', @'.join(sorted(tags & _RUNTIME_TAGS))} is ignored")

    for names, block in docs.variables:
        # `const volatile int a = 1, b = 2;`: one comment documents both, as in C
        targets = [(kind, name, entry) for name in names
                   for kind, entry in (("variable", variables.get(name)), ("map", maps.get(name)))
                   if entry is not None]
        if not targets:
            ignored(block, f"on {', '.join(names) or 'a type definition'} documents no "
                           f"global variable or map of the object")
        for kind, name, entry in targets:
            entry.update(_fields_for(block, kind, name, filename))

    for names, block in docs.functions:
        program = next((n for n in names if n in programs), None)
        if program is None:
            ignored(block, f"on function {names[0] if names else '?'} documents no BPF "
                           f"program of the object")
            continue
        programs[program].update(_fields_for(block, "program", program, filename))

    if docs.license is not None:
        doc = _fields_for(docs.license, "package", "doc", filename)
        if doc:
            bpf_skel["doc"] = doc

    for block in docs.loose:
        ignored(block, "documents no declaration (a directive or another comment block "
                       "comes before the next one)")
    return warnings

