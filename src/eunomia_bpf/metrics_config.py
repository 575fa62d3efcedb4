"""The metrics config file of ``ecli run --metrics-config FILE`` (pure: no kernel, no HTTP).

It keeps the shape of the public eunomia exporter's config, so one file serves both::

    programs:
    - name: opensnoop                    # the package's name
      metrics:
        counters:                        # one per event counted
        - name: eunomia_file_open_counter
          description: files opened
          map: events                    # optional: the export map (default: all of them)
          labels:
          - name: comm                   # label name; `from` defaults to it
          - name: filename
            from: fname                  # the event field the value comes from
        histograms:                      # from maps sampled as log2_hist / linear_hist
        - name: runqlat_usecs
          map: hists                     # optional when the program has only one
          labels: [{name: comm}]         # from "key", a key field or a value field
        gauges:                          # from maps sampled as default_kv
        - name: syscalls
          map: counts
          value: count                   # optional: a numeric field of a struct value
          labels: [{name: key}]

YAML (``.yaml``/``.yml``, and JSON, its subset) or TOML (``.toml``: ``[[programs]]``...).
The public exporter's ``compiled_ebpf_filename``/``ebpf_data`` are accepted and ignored: the
package comes from ``ecli run``'s command line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import EunomiaError

__all__ = [
    "LabelConfig",
    "MetricConfig",
    "MetricsConfig",
    "MetricsConfigError",
    "ProgramMetricsConfig",
    "load_metrics_config",
    "parse_listen_address",
    "parse_metrics_config",
]

MetricKind = Literal["counter", "histogram", "gauge"]
_SECTIONS: dict[str, MetricKind] = {"counters": "counter", "histograms": "histogram",
                                    "gauges": "gauge"}
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# the public exporter's way of naming the package; ours comes from the command line
_IGNORED_PROGRAM_KEYS = {"compiled_ebpf_filename", "ebpf_data"}
_RESERVED_LABELS = {"le", "quantile"}
MAX_CONFIG_BYTES = 1 << 20


class MetricsConfigError(EunomiaError):
    """A metrics config file is unreadable, malformed, or names what the program lacks."""


@dataclass(frozen=True)
class LabelConfig:
    name: str
    source: str  # the ``from`` of the file: an event field, "key", a key or value field


@dataclass(frozen=True)
class MetricConfig:
    kind: MetricKind
    name: str
    description: str
    map: str | None = None
    labels: tuple[LabelConfig, ...] = ()
    value: str | None = None  # gauges: the numeric field of a struct value


@dataclass(frozen=True)
class ProgramMetricsConfig:
    name: str
    metrics: tuple[MetricConfig, ...]


@dataclass(frozen=True)
class MetricsConfig:
    programs: tuple[ProgramMetricsConfig, ...]
    origin: str = "metrics config"

    def for_program(self, *names: str) -> ProgramMetricsConfig:
        """The entry for a program known by any of ``names`` (package name, obj_name)."""
        for entry in self.programs:
            if entry.name in names:
                return entry
        known = ", ".join(p.name for p in self.programs) or "none"
        raise MetricsConfigError(f"read {self.origin}: no program named {names[0]!r} "
                                 f"(it has: {known})")


def load_metrics_config(path: str | Path) -> MetricsConfig:
    """Read a YAML/JSON or TOML metrics config file."""
    path = Path(path)
    origin = f"metrics config {path}"
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise MetricsConfigError(f"read {origin}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise MetricsConfigError(f"read {origin}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        raise MetricsConfigError(f"read {origin}: not UTF-8 text") from exc
    data: Any
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise MetricsConfigError(f"read {origin}: invalid TOML: {exc}") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MetricsConfigError(f"read {origin}: invalid YAML: {first}") from exc
    return parse_metrics_config(data, origin=origin)


def parse_metrics_config(data: Any, *, origin: str = "metrics config") -> MetricsConfig:
    """Check the shape of an already parsed config; every mistake names where it is."""
    return _Parser(origin).config(data)


class _Parser:
    def __init__(self, origin: str) -> None:
        self.origin = origin

    def fail(self, where: str, message: str) -> MetricsConfigError:
        return MetricsConfigError(f"read {self.origin}: {where}: {message}")

    def mapping(self, value: Any, where: str, allowed: set[str],
                required: Sequence[str] = ()) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f"expected a mapping, got {_kind(value)}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} (known: "
                                   f"{', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                raise self.fail(where, f"missing {key!r}")
        return value

    def sequence(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_kind(value)}")
        return value

    def string(self, value: Any, where: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"expected a non-empty string, got {_kind(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(where, f"{value!r} is not a valid Prometheus name "
                                   f"(letters, digits and _, not starting with a digit)")
        return value

    def config(self, data: Any) -> MetricsConfig:
        top = self.mapping(data, "(top level)", {"programs"}, ["programs"])
        programs = [self.program(p, f"programs[{i}]")
                    for i, p in enumerate(self.sequence(top["programs"], "programs"))]
        if not programs:
            raise self.fail("programs", "no program is configured")
        seen: set[str] = set()
        for i, p in enumerate(programs):
            if p.name in seen:
                raise self.fail(f"programs[{i}].name", f"{p.name!r} is configured twice")
            seen.add(p.name)
        return MetricsConfig(tuple(programs), self.origin)

    def program(self, data: Any, where: str) -> ProgramMetricsConfig:
        entry = self.mapping(data, where, {"name", "metrics", *_IGNORED_PROGRAM_KEYS},
                             ["name", "metrics"])
        name = self.string(entry["name"], f"{where}.name")
        sections = self.mapping(entry["metrics"], f"{where}.metrics", set(_SECTIONS))
        metrics: list[MetricConfig] = []
        for section, kind in _SECTIONS.items():
            items = self.sequence(sections.get(section), f"{where}.metrics.{section}")
            metrics += [self.metric(kind, item, f"{where}.metrics.{section}[{i}]")
                        for i, item in enumerate(items)]
        if not metrics:
            raise self.fail(f"{where}.metrics", "no counters, histograms or gauges")
        names: set[str] = set()
        for m in metrics:
            if m.name in names:
                raise self.fail(f"{where}.metrics", f"metric {m.name!r} is defined twice")
            names.add(m.name)
        return ProgramMetricsConfig(name, tuple(metrics))

    def metric(self, kind: MetricKind, data: Any, where: str) -> MetricConfig:
        allowed = {"name", "description", "labels", "map"} | ({"value"} if kind == "gauge"
                                                               else set())
        entry = self.mapping(data, where, allowed, ["name"])
        name = self.string(entry["name"], f"{where}.name", METRIC_NAME)
        description = entry.get("description", "")
        if not isinstance(description, str):
            raise self.fail(f"{where}.description", f"expected a string, got "
                                                    f"{_kind(description)}")
        map_name = None if entry.get("map") is None else \
            self.string(entry["map"], f"{where}.map")
        value = None if entry.get("value") is None else \
            self.string(entry["value"], f"{where}.value")
        labels = [self.label(item, f"{where}.labels[{i}]")
                  for i, item in enumerate(self.sequence(entry.get("labels"), f"{where}.labels"))]
        seen: set[str] = set()
        for i, label in enumerate(labels):
            if label.name in seen:
                raise self.fail(f"{where}.labels[{i}]", f"label {label.name!r} appears twice")
            seen.add(label.name)
        return MetricConfig(kind, name, description or f"{kind} {name} (eunomia-bpf)",
                            map_name, tuple(labels), value)

    def label(self, data: Any, where: str) -> LabelConfig:
        if isinstance(data, str):  # shorthand: "comm" == {name: comm}
            data = {"name": data}
        entry = self.mapping(data, where, {"name", "from"}, ["name"])
        name = self.string(entry["name"], f"{where}.name", LABEL_NAME)
        if name.startswith("__") or name in _RESERVED_LABELS:
            raise self.fail(f"{where}.name", f"{name!r} is reserved by Prometheus")
        source = entry.get("from")
        # the public exporter writes "*" for "same as the name"
        source = name if source in (None, "*") else self.string(source, f"{where}.from")
        return LabelConfig(name, source)


def parse_listen_address(text: str, *, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``PORT``, ``:PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port).

    Without a host the exporter listens on every interface, as Prometheus exporters do.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise MetricsConfigError(f"listen on {text!r}: write an IPv6 address as [ADDR]:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise MetricsConfigError(f"listen on {text!r}: {port_text!r} is not a port "
                                 f"number") from None
    if not 0 <= port <= 65535:
        raise MetricsConfigError(f"listen on {text!r}: port {port} is out of range (0-65535)")
    return host or default_host, port


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
