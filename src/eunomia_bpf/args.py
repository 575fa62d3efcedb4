"""Package variables as command-line options (pure).

Every non-dummy variable of ``.rodata`` / ``.data`` / ``.bss`` becomes ``--NAME VALUE``
(``--NAME`` with dashes works too). Booleans follow eunomia's rules and accept all three
spellings: ``--x`` and ``--enable-x`` set true, ``--disable-x`` sets false.
Values are checked against the BTF type (width, sign, string length) before anything
touches the kernel; a bad one is an :class:`ArgumentError` naming the option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from .btf import BTF, Array, Enum, Enum64, Float, Int
from .errors import ArgumentError, DecodeError
from .spec import ObjectSpec, VariableSpec

__all__ = ["encode_arguments", "format_help", "package_command", "parse_arguments"]


def _value_kind(btf: BTF, type_id: int) -> str | None:
    """'bool' | 'int' | 'float' | 'str' | 'enum', or None if not settable from a CLI."""
    t = btf[btf.resolve(type_id)]
    if isinstance(t, Int):
        return "bool" if t.bool else "int"
    if isinstance(t, Float):
        return "float"
    if isinstance(t, (Enum, Enum64)):
        return "enum"
    if isinstance(t, Array):
        elem = btf[btf.resolve(t.type)]
        if isinstance(elem, Int) and elem.size == 1:
            return "str"
    return None


class _VariableType(click.ParamType):  # type: ignore[type-arg]
    """Parses a string into the Python value of one variable, checked by its layout."""

    def __init__(self, btf: BTF, var: VariableSpec, kind: str) -> None:
        self.btf = btf
        self.var = var
        self.kind = kind
        self.name = var.type_name

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            parsed: Any
            if self.kind == "int":
                parsed = int(value, 0)
            elif self.kind == "float":
                parsed = float(value)
            elif self.kind == "enum":
                try:
                    parsed = int(value, 0)
                except ValueError:
                    parsed = value
            else:
                parsed = value
        except ValueError:
            self.fail(f"{value!r} is not a valid {self.var.type_name}", param, ctx)
        from .decode import layout_for

        try:
            layout_for(self.btf, self.var.type_id).encode(parsed)
        except DecodeError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)
        return parsed


def _names(var: VariableSpec) -> tuple[str, str]:
    long = str(var.cmdarg.get("long") or var.name)
    return long, long.replace("_", "-")


def _help(var: VariableSpec) -> str:
    text = (var.cmdarg.get("help") or var.description
            or f"Set value of `{var.type_name}` variable {var.name}")
    return str(text)


def _bool_options(var: VariableSpec, long: str, dashed: str,
                  with_defaults: bool) -> list[click.Option]:
    """eunomia's visible switch for the declared default, the other spellings hidden."""
    on = {f"--{long}", f"--{dashed}", f"--enable-{long}", f"--enable-{dashed}"}
    off = {f"--disable-{long}", f"--disable-{dashed}"}
    if not var.declared:
        shown, shown_value = [f"--{long}"], True
    elif var.declared_value:
        shown, shown_value = [f"--disable-{long}"], False
    else:
        shown, shown_value = [f"--enable-{long}"], True
    text = _help(var)
    if with_defaults:
        text += f"  [default: {'true' if var.default else 'false'}]"
    visible = click.Option([f"{var.name}__{'on' if shown_value else 'off'}", *shown],
                           flag_value=True, default=None, help=text)
    hidden_on = sorted(on - set(shown))
    hidden_off = sorted(off - set(shown))
    out = [visible]
    if hidden_on:
        out.append(click.Option([f"{var.name}__on2", *hidden_on], flag_value=True,
                                default=None, hidden=True))
    if hidden_off:
        out.append(click.Option([f"{var.name}__off2", *hidden_off], flag_value=True,
                                default=None, hidden=True))
    return out


def package_command(spec: ObjectSpec, *, with_defaults: bool = True) -> click.Command:
    """A click command whose options are the package's variables.

    ``with_defaults=False`` leaves defaults out of the help texts: parsing does not need
    them, and decoding them would load the decoder before the program is attached.
    """
    params: list[click.Parameter] = []
    for var in spec.arguments:
        kind = _value_kind(spec.btf, var.type_id)
        if kind is None:
            continue
        long, dashed = _names(var)
        if kind == "bool":
            params.extend(_bool_options(var, long, dashed, with_defaults))
            continue
        decls = [var.name, f"--{long}"] + ([f"--{dashed}"] if dashed != long else [])
        short = var.cmdarg.get("short")
        if short:
            decls.append(f"-{short}")
        params.append(click.Option(
            decls, type=_VariableType(spec.btf, var, kind), default=None,
            metavar=f"<{var.type_name}>",
            help=_help(var) + (f"  [default: {var.default!r}]"
                               if with_defaults and var.default is not None else "")))
    doc = spec.doc
    brief = str(doc.get("brief") or doc.get("description") or f"eBPF program {spec.name}")
    details = str(doc.get("details") or "")
    return click.Command(
        name=spec.name.removesuffix("_bpf"), params=params, add_help_option=False,
        help=brief + (f"\n\n{details}" if details else ""), context_settings={
            "max_content_width": 100})


def parse_arguments(spec: ObjectSpec, argv: Sequence[str]) -> dict[str, Any]:
    """Parse package options into ``{variable name: value}`` (only those given)."""
    cmd = package_command(spec, with_defaults=False)
    try:
        ctx = cmd.make_context(cmd.name, list(argv), resilient_parsing=False)
    except click.ClickException as exc:
        raise ArgumentError(f"parse arguments of {cmd.name}: {exc.format_message()}") from None
    out: dict[str, Any] = {}
    for key, value in ctx.params.items():
        if value is None:
            continue
        name, _, switch = key.partition("__")
        out[name] = (not switch.startswith("off")) if switch else value
    return out


def format_help(spec: ObjectSpec, usage_prefix: str = "ecli run",
                program: str | None = None) -> str:
    """The package's ``--help`` text: doc, then each option with type and default.

    The usage line reads ``<usage_prefix> <package name>``, or ``<program>`` when the
    package has a command of its own (a wheel's console script)."""
    cmd = package_command(spec)
    ctx = click.Context(cmd, info_name=program or f"{usage_prefix} {cmd.name}",
                        terminal_width=100, max_content_width=100)
    text: str = cmd.get_help(ctx)
    return text


def encode_arguments(spec: ObjectSpec, given: Mapping[str, Any]) -> dict[str, bytes]:
    """Bytes to write before load: declared defaults, then what the user gave."""
    out: dict[str, bytes] = {}
    by_name = {v.name: v for v in spec.variables}
    for name in given:
        if name not in by_name:
            raise ArgumentError(f"set variable {name}: the package has no such variable")
    for var in spec.variables:
        if var.name in given:
            value = given[var.name]
        elif var.declared and _value_kind(spec.btf, var.type_id) is not None:
            value = var.declared_value
        else:
            continue
        from .decode import layout_for  # only when there is something to encode

        try:
            data = layout_for(spec.btf, var.type_id).encode(value)
        except DecodeError as exc:
            raise ArgumentError(f"set variable {var.name}: {exc}") from None
        if len(data) != var.size:
            raise ArgumentError(
                f"set variable {var.name}: value is {len(data)} bytes, variable is {var.size}")
        out[var.name] = data
    return out

