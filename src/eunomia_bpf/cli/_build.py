"""``ecli init``, ``ecli build`` and ``ecli inspect``: the developer's side of ecli.

Only click is imported here at module level: ``ecli run`` imports this module to register
the commands and must not pay for the build tools, pyelftools or the BTF parser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..build import BuiltPackage
    from ..ebpm.manifest import Module
    from ..package import Package
    from ..spec import MapSpec, ObjectSpec

__all__ = ["build_command", "describe_package", "init_command", "inspect_command"]

BUILD_EPILOG = """\b
TARGET is a project directory (default: .) with an ebpm.toml: every [[module]] is
built, into package.json when there is one, NAME.package.json each when there are
several. TARGET may also be a source, as with the public ecc:
  ecli build x.bpf.c [x.h]      -> package.json next to x.bpf.c (or in -o OUTDIR)

\b
Examples:
  ecli init hello && cd hello && ecli build && sudo ecli run package.json
  ecli build examples/opensnoop/opensnoop.bpf.c -o /tmp/out
  ecli build --vmlinux host --cflags "-DDEBUG" .
"""


@click.command("init")
@click.argument("name")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Create the project here (default: ./NAME).")
def init_command(name: str, directory: Path | None) -> None:
    """Create a new project NAME: a working example program, ebpm.toml and a Makefile."""
    from ..build import init_project

    target = directory if directory is not None else Path(name)
    written = init_project(name, target)
    click.echo(f"created {name} in {target}/:")
    for path in written:
        click.echo(f"  {path.name}")
    cd = "" if target == Path(".") else f"cd {target} && "
    click.echo(f"next: {cd}make && sudo ecli run package.json")


def _vmlinux_choice(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if value in ("pinned", "host") or Path(value).expanduser().exists():
        return value
    raise click.BadParameter(f"{value!r}: expected pinned, host or the path of a vmlinux.h")


def _report(built: BuiltPackage, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"name": built.name, "path": str(built.path),
                               "size": built.size, "sha256": built.digest}, sort_keys=True))
    else:
        click.echo(f"{built.path}  {built.size} bytes  sha256:{built.digest}")


@click.command("build", epilog=BUILD_EPILOG)
@click.argument("target", required=False, default=".",
                type=click.Path(exists=True, path_type=Path))
@click.argument("header", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "outdir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the packages into this directory.")
@click.option("--cflags", default="", metavar="FLAGS",
              help='Extra clang flags, split like a shell does: --cflags "-DX=1 -Wall".')
@click.option("-I", "--include", "include_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Add a directory to the include path (repeatable).")
@click.option("--yaml", "as_yaml", is_flag=True, help="Write package.yaml instead of JSON.")
@click.option("--vmlinux", default="pinned", show_default=True, callback=_vmlinux_choice,
              metavar="pinned|host|PATH",
              help="vmlinux.h to compile against: the pinned copy (reproducible), one "
                   "generated from this kernel's BTF, or a file.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per package built.")
def build_command(target: Path, header: Path | None, outdir: Path | None, cflags: str,
                  include_dirs: tuple[Path, ...], as_yaml: bool, vmlinux: str,
                  as_json: bool) -> None:
    """Compile eBPF C sources into packages that `ecli run` loads anywhere."""
    import shlex

    from ..build import BuildOptions, build_project, build_source

    try:
        flags = tuple(shlex.split(cflags))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cflags") from None
    options = BuildOptions(include_dirs=include_dirs, cflags=flags, yaml=as_yaml,
                           vmlinux=vmlinux)
    if target.is_dir() or target.name.endswith(".toml"):
        if header is not None:
            raise click.UsageError("HEADER goes with a source (ecli build x.bpf.c x.h), "
                                   "not with a project; name it in ebpm.toml")

        def progress(index: int, total: int, module: Module) -> None:
            if total > 1:
                click.echo(f"ecli: building {module.name} ({index}/{total})", err=True)

        for built in build_project(target, outdir=outdir, options=options, progress=progress):
            _report(built, as_json)
    else:
        _report(build_source(target, header, outdir=outdir, options=options), as_json)


# --- inspect ------------------------------------------------------------------------------

# enum bpf_map_type (include/uapi/linux/bpf.h)
MAP_TYPES = (
    "UNSPEC", "HASH", "ARRAY", "PROG_ARRAY", "PERF_EVENT_ARRAY", "PERCPU_HASH",
    "PERCPU_ARRAY", "STACK_TRACE", "CGROUP_ARRAY", "LRU_HASH", "LRU_PERCPU_HASH",
    "LPM_TRIE", "ARRAY_OF_MAPS", "HASH_OF_MAPS", "DEVMAP", "SOCKMAP", "CPUMAP", "XSKMAP",
    "SOCKHASH", "CGROUP_STORAGE", "REUSEPORT_SOCKARRAY", "PERCPU_CGROUP_STORAGE", "QUEUE",
    "STACK", "SK_STORAGE", "DEVMAP_HASH", "STRUCT_OPS", "RINGBUF", "INODE_STORAGE",
    "TASK_STORAGE", "BLOOM_FILTER", "USER_RINGBUF", "CGRP_STORAGE", "ARENA",
)

# section prefix -> attach kind, as the runtime attaches them
ATTACH_KINDS = {
    "tp": "tracepoint", "tracepoint": "tracepoint", "raw_tp": "raw_tracepoint",
    "raw_tracepoint": "raw_tracepoint", "tp_btf": "btf_tracepoint", "kprobe": "kprobe",
    "kretprobe": "kretprobe", "kprobe.multi": "kprobe_multi",
    "kretprobe.multi": "kretprobe_multi", "uprobe": "uprobe", "uretprobe": "uretprobe",
    "uprobe.s": "uprobe", "uretprobe.s": "uretprobe", "usdt": "usdt",
    "perf_event": "perf_event", "xdp": "xdp", "tc": "tc", "classifier": "tc",
    "cgroup_skb": "cgroup_skb", "socket": "socket_filter", "iter": "iter",
    "fentry": "fentry", "fexit": "fexit", "fmod_ret": "fmod_ret", "lsm": "lsm",
    "struct_ops": "struct_ops",
}


def _map_type_name(map_type: int | None) -> str:
    if map_type is None:
        return "ARRAY"  # global data (.rodata/.data/.bss) maps are arrays
    return MAP_TYPES[map_type] if 0 <= map_type < len(MAP_TYPES) else str(map_type)


def _typed(spec: ObjectSpec, type_id: int, size: int | None) -> dict[str, Any] | None:
    if type_id:
        return {"type": spec.btf.type_name(type_id), "size": spec.btf.size_of(type_id)}
    if size:
        return {"type": None, "size": size}
    return None


def _describe_map(spec: ObjectSpec, m: MapSpec) -> dict[str, Any]:
    from ..btf import Var
    from ..spec import _map_definition

    sizes: Mapping[str, int] = {}
    section = spec.btf.datasec(".maps")
    for info in section.vars if section else ():
        var = spec.btf[info.type]
        if isinstance(var, Var) and var.name == m.name:
            sizes = _map_definition(spec.btf, var)
    key = _typed(spec, m.key_type_id, sizes.get("key_size"))
    value = _typed(spec, m.value_type_id, sizes.get("value_size"))
    max_entries = m.max_entries
    if m.map_type is None:
        data = spec.btf.datasec(m.name)
        key = {"type": None, "size": 4}
        value = {"type": None, "size": data.size} if data else None
        max_entries = 1
    out: dict[str, Any] = {
        "name": m.name, "ident": m.ident, "type": _map_type_name(m.map_type),
        "key": key, "value": value, "max_entries": max_entries, "mmaped": m.mmaped,
    }
    if m.sample is not None:
        out["sample"] = dict(m.sample)
    if m.export_config is not None:
        out["export_config"] = m.export_config
    return out


def _describe_struct(spec: ObjectSpec, type_id: int) -> list[dict[str, Any]]:
    from ..btf import Struct, Union

    struct = spec.btf[spec.btf.resolve(type_id)]
    if not isinstance(struct, (Struct, Union)):
        return []
    fields = []
    for member in struct.members:
        field: dict[str, Any] = {
            "name": member.name, "type": spec.btf.type_name(member.type),
            "offset": member.bit_offset // 8,
        }
        if member.bitfield_size:
            field["size"] = None
            field["bits"] = [member.bit_offset % 8, member.bitfield_size]
        else:
            field["size"] = spec.btf.size_of(member.type)
        fields.append(field)
    return fields


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def describe_package(pkg: Package, *, origin: str, file_size: int) -> dict[str, Any]:
    """Everything ``ecli inspect`` shows, as a JSON-ready dict."""
    from ..btf import Kind
    from ..errors import BTFError
    from ..spec import ObjectSpec

    spec = ObjectSpec.from_package(pkg)
    programs = []
    for p in spec.programs:
        prefix, _, target = p.section.partition("/")
        programs.append({"name": p.name, "section": p.section,
                         "attach": ATTACH_KINDS.get(prefix, prefix), "target": target or None,
                         "link": p.link, **_jsonable(dict(p.params))})
    options = [{"name": v.name, "section": v.section, "type": v.type_name, "size": v.size,
                "default": _jsonable(v.default), "description": v.description}
               for v in spec.arguments]
    carried_by: dict[str, list[str]] = {}
    for e in spec.exports:
        carried_by.setdefault(e.type_name, []).append(e.map_name)
    exports = []
    for et in pkg.meta.get("export_types") or []:
        name = str(et.get("name", ""))
        try:
            type_id = spec.btf.find(name, Kind.STRUCT)
        except BTFError:
            type_id = int(et.get("type_id") or 0)
        type_name = spec.btf.type_name(type_id) if type_id else f"struct {name}"
        exports.append({"name": name, "type": type_name,
                        "size": spec.btf.size_of(type_id) if type_id else et.get("size"),
                        "maps": carried_by.get(type_name, []),
                        "fields": _describe_struct(spec, type_id) if type_id else []})
    doc = {k: pkg.doc[k] for k in ("brief", "details", "version", "description")
           if pkg.doc.get(k)}
    return {
        "name": pkg.name, "obj_name": spec.name, "origin": origin,
        "sha256": pkg.digest, "file_size": file_size, "object_size": len(pkg.object),
        "eunomia_version": pkg.meta.get("eunomia_version"), "doc": doc, "programs": programs,
        "maps": [_describe_map(spec, m) for m in spec.maps],
        "options": options, "export_types": exports,
    }


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = []
    for row in [headers, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row, widths, strict=True)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _typed_text(typed: Mapping[str, Any] | None) -> str:
    if typed is None:
        return "-"
    if typed["type"] is None:
        return f"{typed['size']} bytes"
    return f"{typed['type']} ({typed['size']})"


def _default_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _map_notes(m: Mapping[str, Any]) -> str:
    notes = []
    if "sample" in m:
        sample = m["sample"]
        notes.append(f"sampled: {sample.get('type', 'table')} every "
                     f"{sample.get('interval', '?')} ms")
    if "export_config" in m:
        notes.append(f"export_config: {json.dumps(m['export_config'])}")
    return "; ".join(notes)


def format_description(info: Mapping[str, Any]) -> str:
    """The plain-text ``ecli inspect``: aligned columns, no colours, fine in a CI log."""
    lines = [f"{info['name']}  ({info['origin']})",
             f"  sha256        {info['sha256']}",
             (f"  size          {info['file_size']} bytes package, "
              f"{info['object_size']} bytes BPF object")]
    if info.get("eunomia_version"):
        lines.append(f"  built by      eunomia {info['eunomia_version']}")
    for key in ("brief", "description", "details", "version"):
        if key in info["doc"]:
            text = str(info["doc"][key]).strip().replace("\n", "\n" + " " * 16)
            lines.append(f"  {key:<13} {text}")

    lines += ["", f"programs ({len(info['programs'])})"]
    lines += _table(("NAME", "ATTACH", "SECTION"),
                    [(p["name"], p["attach"], p["section"]) for p in info["programs"]])

    lines += ["", f"maps ({len(info['maps'])})"]
    lines += _table(("NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "NOTES"),
                    [(m["name"], m["type"], _typed_text(m["key"]), _typed_text(m["value"]),
                      str(m["max_entries"]), _map_notes(m)) for m in info["maps"]])

    lines += ["", f"options ({len(info['options'])})"]
    if info["options"]:
        lines += _table(("OPTION", "TYPE", "DEFAULT", "DESCRIPTION"),
                        [(f"--{o['name']}", o["type"], _default_text(o["default"]),
                          o["description"] or "") for o in info["options"]])

    lines += ["", f"export types ({len(info['export_types'])})"]
    for e in info["export_types"]:
        maps = f", events from {', '.join(e['maps'])}" if e["maps"] else ""
        lines.append(f"  {e['type']} ({e['size']} bytes{maps})")
        lines += _table(("OFFSET", "SIZE", "FIELD", "TYPE"),
                        [(str(f["offset"]),
                          str(f["size"]) if f["size"] is not None else f"{f['bits'][1]} bits",
                          f["name"], f["type"]) for f in e["fields"]], indent="    ")
    return "\n".join(lines)


@click.command("inspect")
@click.argument("package", metavar="PACKAGE")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def inspect_command(package: str, as_json: bool) -> None:
    """Show what PACKAGE holds: programs, maps, options, event types, digest, sizes.

    PACKAGE is found as `ecli run` finds it: a path, '-', a URL or a name.
    """
    from ..package import read_package
    from ..resolve import resolve

    found = resolve(package)
    info = describe_package(read_package(found.data), origin=found.origin,
                            file_size=len(found.data))
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True, default=str))
    else:
        click.echo(format_description(info))
