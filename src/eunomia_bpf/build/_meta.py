"""Package meta from a compiled object, the way the public ecc writes it.

Everything comes from the ELF (sections, symbols) and the object's BTF; nothing from the
source, so the meta of an object built by ecc can be regenerated and compared. The
naming rules are libbpf's and bpftool's, because ecc's meta is what ``bpftool gen
skeleton`` sees after ``bpf_object__open``:

- programs: every function symbol in an executable section other than ``.text``, in
  section order, ``attach`` = the section name;
- maps: the ``.maps`` BTF variables first, then one internal map per non-empty
  ``.data*`` / ``.rodata*`` / ``.bss*`` section, named like libbpf's
  ``internal_map_name`` (8 characters of the object name + the section name, or the
  section name alone when it has a second dot) and identified like bpftool's
  ``get_map_ident``; such a map is ``mmaped`` when its section holds a non-static
  variable, and only those sections are listed in ``data_sections``;
- export types: ``struct x`` for every ``.bss`` variable ``__eunomia_dummy_x_ptr`` (ecc's
  convention), or the structs a header defines, or the names given.

Given the source too, its ``///`` doc comments add what ecc reads from them (descriptions,
``@cmdarg``, ``@sample``, ``@tchook``..., the package ``doc``): see :mod:`._doc`.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from ..btf import BTF, Kind, Ptr, Struct, Var
from ..errors import BTFError
from ._doc import apply_doc_comments, read_doc_comments
from ._errors import BuildError

__all__ = ["generate_meta"]

log = logging.getLogger("eunomia_bpf.build")

_BPF_OBJ_NAME_LEN = 16  # kernel limit on map names, NUL included
_IDENT_SUFFIXES = (".data", ".rodata", ".bss", ".kconfig")  # bpftool's get_map_ident order
_DUMMY = re.compile(r"^__eunomia_dummy_(\w+)_ptr$")
_HEADER_STRUCT = re.compile(r"\bstruct\s+([A-Za-z_]\w*)\s*\{")


def _is_internal_section(name: str, nobits: bool) -> bool:
    if nobits:
        return name == ".bss" or name.startswith(".bss.")
    return any(name == base or name.startswith(base + ".") for base in (".data", ".rodata"))


def internal_map_name(obj_name: str, section: str) -> str:
    """libbpf's name for the map of a global-data section (``client_b.rodata``)."""
    suffix_len = max(7, len(section))
    prefix_len = 0 if "." in section[1:] else min(_BPF_OBJ_NAME_LEN - suffix_len - 1,
                                                  len(obj_name))
    name = (obj_name[:max(prefix_len, 0)] + section[:suffix_len])[:_BPF_OBJ_NAME_LEN - 1]
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name)


def _map_ident(map_name: str) -> str | None:
    for suffix in _IDENT_SUFFIXES:
        at = map_name.find(suffix)
        if at >= 0:
            return "".join(c if c.isalnum() else "_" for c in map_name[at + 1:])
    return None


def _section_vars(btf: BTF, section: str, *, with_static: bool = False) -> list[tuple[int, Var]]:
    """(offset, Var) of a DATASEC, by offset as libbpf sorts them; static ones dropped."""
    sec = btf.datasec(section)
    if sec is None:
        return []
    out = []
    for info in sec.vars:
        var = btf[info.type]
        if not isinstance(var, Var):
            continue
        if var.linkage == 0 and not with_static:  # BTF_VAR_STATIC
            continue
        out.append((info.offset, var))
    return sorted(out, key=lambda pair: pair[0])


def _programs(elf: ELFFile) -> list[dict[str, Any]]:
    symtab = elf.get_section_by_name(".symtab")
    if not isinstance(symtab, SymbolTableSection):
        raise BuildError("generate meta: object has no symbol table")
    found = []
    for sym in symtab.iter_symbols():
        shndx = sym["st_shndx"]
        if sym["st_info"]["type"] != "STT_FUNC" or not isinstance(shndx, int):
            continue
        section = elf.get_section(shndx)
        if section.name == ".text" or not section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR:
            continue
        found.append((shndx, sym["st_value"], {"name": sym.name, "attach": section.name,
                                               "link": True}))
    return [prog for _, _, prog in sorted(found, key=lambda t: (t[0], t[1]))]


def _maps_and_sections(elf: ELFFile, btf: BTF,
                       obj_name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    maps: list[dict[str, Any]] = [{"name": var.name, "ident": var.name}
                                  for _, var in _section_vars(btf, ".maps", with_static=True)]
    data_sections: list[dict[str, Any]] = []
    for section in elf.iter_sections():
        nobits = section["sh_type"] == "SHT_NOBITS"
        if not (nobits or section["sh_type"] == "SHT_PROGBITS"):
            continue
        if section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR or section["sh_size"] == 0:
            continue
        if not _is_internal_section(section.name, nobits):
            continue
        name = internal_map_name(obj_name, section.name)
        ident = _map_ident(name)
        if ident is None:  # bpftool leaves such a map out of the skeleton, so does ecc
            continue
        variables = _section_vars(btf, section.name)
        entry: dict[str, Any] = {"name": name, "ident": ident}
        if variables:
            entry["mmaped"] = True
            data_sections.append({
                "name": section.name,
                "variables": [{"name": var.name, "type": btf.type_name(var.type, qualifiers=False)}
                              for _, var in variables],
            })
        maps.append(entry)
    return maps, data_sections


def _export_type(btf: BTF, name: str) -> dict[str, Any]:
    try:
        type_id = btf.find(name, Kind.STRUCT)
    except BTFError:
        raise BuildError(f"generate meta: export type struct {name} is not in the object's "
                         f"BTF (use it in the program, or declare "
                         f"`struct {name} *__eunomia_dummy_{name}_ptr;`)") from None
    struct = btf[type_id]
    assert isinstance(struct, Struct)
    return {
        "name": name,
        "members": [{"name": m.name, "type": btf.type_name(m.type, qualifiers=False)} for m in struct.members],
        "size": struct.size,
        "type_id": type_id,
    }


def _dummy_export_names(btf: BTF) -> list[str]:
    names = []
    for _, var in _section_vars(btf, ".bss"):
        match = _DUMMY.match(var.name)
        if match is None:
            continue
        target = btf[btf.unqualified(var.type)]
        if isinstance(target, Ptr):
            pointee = btf[btf.unqualified(target.type)]
            if isinstance(pointee, Struct) and pointee.name:
                names.append(pointee.name)
                continue
        names.append(match.group(1))
    return names


def _header_export_names(btf: BTF, header: Path) -> list[str]:
    try:
        text = header.read_text()
    except OSError as exc:
        raise BuildError(f"generate meta: read header {header}: {exc.strerror}") from None
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.DOTALL)
    names = []
    for name in _HEADER_STRUCT.findall(text):
        try:
            btf.find(name, Kind.STRUCT)
        except BTFError:
            continue  # defined but never used by the program: nothing to decode
        names.append(name)
    return names


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def generate_meta(obj: bytes, *, obj_name: str, header: Path | None = None,
                  export_types: Sequence[str] = (), source: Path | None = None) -> dict[str, Any]:
    """The ``meta`` of a package for ``obj``, as ecc would write it.

    Export types are, in order of precedence: the struct names in ``export_types``; the
    structs ``header`` defines that the object's BTF holds; the ``__eunomia_dummy_x_ptr``
    convention. ``obj_name`` is what :func:`object_name` gives for the source.
    ``source``, the C file ``obj`` was compiled from, adds its ``///`` doc comments; a
    malformed one is a :class:`BuildError` naming ``file:line``, and a tagged one that
    documents nothing in the object is logged as a warning.
    """
    try:
        elf = ELFFile(io.BytesIO(obj))
    except ELFError as exc:
        raise BuildError(f"generate meta: not an ELF object: {exc}") from None
    if elf["e_machine"] != "EM_BPF":
        raise BuildError(f"generate meta: not a BPF object (machine {elf['e_machine']})")
    try:
        btf = BTF.from_elf(obj)
        programs = _programs(elf)
        maps, data_sections = _maps_and_sections(elf, btf, obj_name)
        if export_types:
            wanted = list(export_types)
        elif header is not None:
            wanted = _header_export_names(btf, header)
        else:
            wanted = _dummy_export_names(btf)
        exports = [_export_type(btf, struct) for struct in _unique(wanted)]
    except BTFError as exc:
        raise BuildError(f"generate meta: {exc}") from None
    except ELFError as exc:
        raise BuildError(f"generate meta: malformed ELF: {exc}") from None

    bpf_skel: dict[str, Any] = {
        "obj_name": obj_name,
        "progs": programs,
        "maps": maps,
        "data_sections": data_sections,
    }
    if source is not None:
        for warning in apply_doc_comments(bpf_skel, read_doc_comments(source)):
            log.warning("%s", warning)
    meta: dict[str, Any] = {"bpf_skel": bpf_skel}
    if exports:
        meta["export_types"] = exports
    return meta
