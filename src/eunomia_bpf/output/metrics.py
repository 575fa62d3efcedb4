"""Prometheus metrics of a running program, served at ``/metrics`` by prometheus-client.

What is exported (``ecli run --metrics [HOST:]PORT [--label FIELD]...``):

* ``eunomia_events_total{program, map, <FIELD>...}``: events read from each export map,
  labelled with the chosen event fields (values as strings);
* ``eunomia_map_<map>_<unit>``: a Prometheus histogram per ``log2_hist``/``linear_hist``
  sampled map, one series per key (``key``, or one label per field of a struct key);
* ``eunomia_map_<map>``: a gauge per ``default_kv`` sampled map (``field`` names the
  member of a struct value).

A metrics config file (:mod:`eunomia_bpf.metrics_config`) replaces these defaults with the
metrics it names. Each metric keeps at most ``max_series`` label sets; events of further
ones are counted under ``__other__`` (with one warning), so that a label like ``pid`` or
``fname`` cannot grow the exporter without bound.

The exporter is one custom collector with its own registry: it keeps plain counts and
builds the metric families at scrape time, which is what a histogram read from a map
needs (prometheus-client's ``Histogram`` only takes single observations).
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from .._closing import Closing
from ..errors import EunomiaError
from ..metrics_config import LABEL_NAME, MetricConfig, MetricsConfigError, ProgramMetricsConfig
from ..sampler import histogram_slots

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from ..decode import Layout
    from ..runner import Batch
    from ..sampler import MapSample
    from ..spec import MapSpec, ObjectSpec

__all__ = ["EVENTS_TOTAL", "MAX_SERIES", "OTHER", "MetricsExporter"]

log = logging.getLogger("eunomia_bpf.metrics")

EVENTS_TOTAL = "eunomia_events_total"
MAX_SERIES = 1000
OTHER = "__other__"
HISTOGRAM_KINDS = ("log2_hist", "linear_hist")


def label_value(value: Any) -> str:
    """Label values are strings: ``true``/``false``, decimal numbers, text as it is."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return ",".join(f"{k}={label_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ",".join(label_value(v) for v in value) + "]"
    return str(value)


def _metric_name(*parts: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_:]", "_", "_".join(p for p in parts if p))


@dataclass
class _Family:
    """One metric family: its label names and its series, at most ``limit`` of them."""

    kind: Literal["counter", "histogram", "gauge"]
    name: str
    help: str
    labels: tuple[str, ...]
    fixed: int          # how many leading labels are fixed (program, map): never folded
    limit: int
    buckets: str = ""   # histograms: log2_hist | linear_hist
    series: dict[tuple[str, ...], Any] = field(default_factory=dict)
    warned: bool = False

    def admit(self, labels: tuple[str, ...]) -> tuple[str, ...]:
        """``labels``, or the ``__other__`` set once the family is full."""
        if labels in self.series or len(self.series) < self.limit:
            return labels
        if not self.warned:
            self.warned = True
            log.warning("metric %s has %d label sets; further ones are counted as %s",
                        self.name, self.limit, OTHER)
        return labels[:self.fixed] + (OTHER,) * (len(labels) - self.fixed)


@dataclass
class _Counter:
    family: _Family
    maps: frozenset[str]
    fields: tuple[str, ...]
    prefix: tuple[str, ...] = ()  # fixed label values before the map's name
    with_map: bool = False        # the map's name as the label after the prefix


# Where a label of a sampled map comes from: the whole key, a key field or a value field.
_Source = tuple[Literal["key", "key_field", "value_field"], str]


@dataclass
class _SampleRule:
    family: _Family
    map_name: str
    sources: tuple[_Source, ...]
    prefix: tuple[str, ...]
    clear: bool = False           # the map is cleared after each reading (histograms)
    value_field: str | None = None  # gauges: the member of a struct value to export
    per_field: bool = False         # gauges: one series per numeric member (label "field")


class MetricsExporter(Closing):
    """Turns batches of a running program into Prometheus metrics and serves them.

    >>> exporter = MetricsExporter(prog.spec, program="opensnoop", labels=["comm"])
    >>> exporter.serve("127.0.0.1", 9100)
    >>> for batch in prog.batches():
    ...     exporter.observe(batch)
    """

    def __init__(self, spec: ObjectSpec, *, program: str | None = None,
                 labels: Sequence[str] = (), config: ProgramMetricsConfig | None = None,
                 max_series: int = MAX_SERIES) -> None:
        self.spec = spec
        self.program = program or spec.name
        self.max_series = max_series
        self.registry = CollectorRegistry(auto_describe=False)
        self._lock = threading.Lock()
        self._families: list[_Family] = []
        self._counters: dict[str, list[_Counter]] = collections.defaultdict(list)
        self._sampled: dict[str, list[_SampleRule]] = collections.defaultdict(list)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        from ..decode import layout_for

        self._events = {e.map_name: layout_for(spec.btf, e.type_id) for e in spec.exports}
        self._samples = {m.name: m for m in spec.maps if m.sample}
        if config is not None:
            if labels:
                raise MetricsConfigError("configure metrics: --label and a metrics config "
                                         "do not mix (put the labels in the config)")
            for metric in config.metrics:
                self._add_configured(metric)
        else:
            self._add_defaults(tuple(labels))
        self.registry.register(self)

    # -- set-up ----------------------------------------------------------------------
    def _family(self, kind: Literal["counter", "histogram", "gauge"], name: str, help_: str,
                labels: Sequence[str], fixed: int) -> _Family:
        fam = _Family(kind, name, help_, tuple(labels), fixed, self.max_series)
        self._families.append(fam)
        return fam

    def _add_defaults(self, fields: tuple[str, ...]) -> None:
        for name in fields:
            if not LABEL_NAME.match(name) or name in ("program", "map", "le"):
                raise MetricsConfigError(f"configure metrics: --label {name}: not usable "
                                         f"as a Prometheus label name")
            if not any(name in layout.names for layout in self._events.values()):
                raise MetricsConfigError(
                    f"configure metrics: --label {name}: no event field of that name "
                    f"({self._event_fields()})")
        if self._events:
            fam = self._family("counter", EVENTS_TOTAL,
                               "Events read from each export map of the program",
                               ("program", "map", *fields), 2)
            counter = _Counter(fam, frozenset(self._events), fields, (self.program,), True)
            for map_name in self._events:
                self._counters[map_name].append(counter)
        for spec in self._samples.values():
            kind = str(spec.sample.get("type", "default_kv")) if spec.sample else ""
            key = _layout(self.spec, spec.key_type_id)
            key_labels = _key_labels(key)
            sources: tuple[_Source, ...] = tuple(
                ("key_field", f) for f in key.names) if key and key.names else (("key", ""),)
            prefix = (self.program, spec.name)
            if kind in HISTOGRAM_KINDS:
                unit = str(spec.sample.get("unit", "")) if spec.sample else ""
                fam = self._family("histogram", _metric_name("eunomia_map", spec.name,
                                                             _unit_suffix(unit)),
                                   f"{kind} map {spec.name} ({unit or 'no unit'}); _sum is "
                                   f"estimated from bucket midpoints",
                                   ("program", "map", *key_labels), 2)
                fam.buckets = kind
                self._sampled[spec.name].append(_SampleRule(
                    fam, spec.name, sources, prefix, clear=_clears(spec)))
            else:
                value = _layout(self.spec, spec.value_type_id)
                per_field = bool(value and value.names)
                fam = self._family("gauge", _metric_name("eunomia_map", spec.name),
                                   f"Values of map {spec.name}",
                                   ("program", "map", *key_labels,
                                    *(("field",) if per_field else ())), 2)
                self._sampled[spec.name].append(_SampleRule(
                    fam, spec.name, sources, prefix, per_field=per_field))

    def _add_configured(self, metric: MetricConfig) -> None:
        where = f"configure metrics: {metric.kind} {metric.name}"
        labels = tuple(label.name for label in metric.labels)
        if metric.kind == "counter":
            maps = [metric.map] if metric.map else list(self._events)
            if not maps:
                raise MetricsConfigError(f"{where}: {self.program} has no event maps")
            for m in maps:
                if m not in self._events:
                    raise MetricsConfigError(f"{where}: map {m!r} is not an event map of "
                                             f"{self.program} (event maps: "
                                             f"{', '.join(self._events) or 'none'})")
            for label in metric.labels:
                if not any(label.source in self._events[m].names for m in maps):
                    raise MetricsConfigError(f"{where}: label {label.name}: no event field "
                                             f"{label.source!r} ({self._event_fields()})")
            fam = self._family("counter", metric.name, metric.description, labels, 0)
            counter = _Counter(fam, frozenset(maps), tuple(lb.source for lb in metric.labels))
            for m in maps:
                self._counters[m].append(counter)
            return
        wanted = HISTOGRAM_KINDS if metric.kind == "histogram" else ("default_kv",)
        candidates = [name for name, s in self._samples.items()
                      if str((s.sample or {}).get("type", "default_kv")) in wanted]
        if metric.map is None:
            if len(candidates) != 1:
                raise MetricsConfigError(f"{where}: say which map (`map:`); "
                                         f"{' or '.join(wanted)} maps: "
                                         f"{', '.join(candidates) or 'none'}")
            map_name = candidates[0]
        elif metric.map not in candidates:
            raise MetricsConfigError(f"{where}: map {metric.map!r} is not a sampled "
                                     f"{' or '.join(wanted)} map of {self.program} (those: "
                                     f"{', '.join(candidates) or 'none'})")
        else:
            map_name = metric.map
        spec = self._samples[map_name]
        key, value = _layout(self.spec, spec.key_type_id), _layout(self.spec, spec.value_type_id)
        key_fields = key.names if key else ()
        value_fields = value.names if value else ()
        sources: list[_Source] = []
        for label in metric.labels:
            if label.source == "key":
                sources.append(("key", ""))
            elif label.source in key_fields:
                sources.append(("key_field", label.source))
            elif label.source in value_fields:
                sources.append(("value_field", label.source))
            else:
                known = ["key", *key_fields, *value_fields]
                raise MetricsConfigError(f"{where}: label {label.name}: map {map_name} has no "
                                         f"{label.source!r} (labels can come from: "
                                         f"{', '.join(known)})")
        value_field = metric.value
        if metric.kind == "gauge":
            if value_field is not None and value_field not in value_fields:
                raise MetricsConfigError(f"{where}: value {value_field!r} is not a field of "
                                         f"the values of map {map_name} (fields: "
                                         f"{', '.join(value_fields) or 'none: a plain value'})")
            if value_field is None and value_fields:
                raise MetricsConfigError(f"{where}: the values of map {map_name} are structs; "
                                         f"say which field (`value:`): "
                                         f"{', '.join(value_fields)}")
        fam = self._family(metric.kind, metric.name, metric.description, labels, 0)
        fam.buckets = str((spec.sample or {}).get("type", ""))
        self._sampled[map_name].append(_SampleRule(fam, map_name, tuple(sources), (),
                                                   clear=_clears(spec), value_field=value_field))

    def _event_fields(self) -> str:
        return "; ".join(f"{m}: {', '.join(layout.names) or 'value'}"
                         for m, layout in self._events.items()) or "the program has no event maps"

    # -- feeding ---------------------------------------------------------------------
    def observe(self, batch: Batch) -> None:
        """Count the events of one batch, or take in one reading of a sampled map."""
        if batch.sample is not None:
            self.observe_sample(batch.sample)
        elif batch.records is not None and batch.source in self._counters:
            rules = self._counters[batch.source]
            columns = batch.columns() if any(r.fields for r in rules) else {}
            self.observe_records(batch.source, columns, len(batch))

    def observe_records(self, source: str, columns: Mapping[str, list[Any]],
                        count: int) -> None:
        """``count`` events of export map ``source``; ``columns`` holds the label fields."""
        for rule in self._counters.get(source, ()):
            head = rule.prefix + ((source,) if rule.with_map else ())
            if rule.fields:
                blank = [""] * count  # a field this map's events lack (several export maps)
                tally = collections.Counter(zip(*(columns.get(f, blank) for f in rule.fields)))
                groups = [(head + tuple(label_value(v) for v in values), n)
                          for values, n in tally.items()]
            else:
                groups = [(head, count)]
            with self._lock:
                series = rule.family.series
                for labels, n in groups:
                    labels = rule.family.admit(labels)
                    series[labels] = series.get(labels, 0) + n

    def observe_sample(self, sample: MapSample) -> None:
        for rule in self._sampled.get(sample.map_name, ()):
            if rule.family.kind == "histogram":
                self._take_histogram(rule, sample)
            else:
                self._take_gauge(rule, sample)

    def _labels_of(self, rule: _SampleRule, entry: Mapping[str, Any]) -> tuple[str, ...]:
        key, value = entry["key"], entry["value"]
        out = []
        for where, name in rule.sources:
            if where == "key":
                out.append(label_value(key))
            else:
                holder = key if where == "key_field" else value
                out.append(label_value(holder.get(name, "") if isinstance(holder, Mapping)
                                       else ""))
        return rule.prefix + tuple(out)

    def _take_histogram(self, rule: _SampleRule, sample: MapSample) -> None:
        reading: dict[tuple[str, ...], list[int]] = {}
        for entry in sample.entries:
            slots = histogram_slots(entry["value"])
            if slots is None:
                continue
            labels = self._labels_of(rule, entry)
            reading[labels] = _add_slots(reading.get(labels), slots)
        # Without clear_map the map itself holds counts since the program started, which
        # is exactly a Prometheus cumulative histogram: expose each reading as it is (a
        # key that vanished keeps its last counts, so no series goes backwards). With
        # clear_map every reading holds only what happened since the one before: add up.
        # Several keys may share one label set (folded into __other__, or a config label
        # coarser than the key): they add up within a reading.
        with self._lock:
            series = rule.family.series
            touched: set[tuple[str, ...]] = set()
            for labels, slots in reading.items():
                labels = rule.family.admit(labels)
                if rule.clear or labels in touched:
                    series[labels] = _add_slots(series.get(labels), slots)
                else:
                    series[labels] = slots
                touched.add(labels)

    def _take_gauge(self, rule: _SampleRule, sample: MapSample) -> None:
        reading: dict[tuple[str, ...], float] = {}
        for entry in sample.entries:
            labels = self._labels_of(rule, entry)
            value = entry["value"]
            if rule.per_field and isinstance(value, Mapping):
                items = [(labels + (str(k),), v) for k, v in value.items()]
            else:
                v = value.get(rule.value_field) if rule.value_field and \
                    isinstance(value, Mapping) else value
                items = [(labels, v)]
            for labels_, v in items:
                number = _number(v)
                if number is not None:
                    reading[labels_] = reading.get(labels_, 0.0) + number
        # a gauge is the map as it is now: keys gone from the map leave the metric
        with self._lock:
            rule.family.series = {}
            for labels, number in reading.items():
                labels = rule.family.admit(labels)
                rule.family.series[labels] = rule.family.series.get(labels, 0.0) + number

    # -- the collector prometheus-client calls at each scrape --------------------------
    def collect(self) -> Iterator[Metric]:
        with self._lock:
            snapshot = [(fam, dict(fam.series)) for fam in self._families]
        for fam, series in snapshot:
            metric: Metric
            if fam.kind == "counter":
                counter = CounterMetricFamily(fam.name, fam.help, labels=fam.labels)
                for labels, n in series.items():
                    counter.add_metric(labels, n)
                metric = counter
            elif fam.kind == "gauge":
                gauge = GaugeMetricFamily(fam.name, fam.help, labels=fam.labels)
                for labels, number in series.items():
                    gauge.add_metric(labels, number)
                metric = gauge
            else:
                hist = HistogramMetricFamily(fam.name, fam.help, labels=fam.labels)
                for labels, slots in series.items():
                    buckets, total = _buckets(slots, fam.buckets)
                    hist.add_metric(labels, buckets, total)
                metric = hist
            yield metric

    def exposition(self) -> bytes:
        """The text a scrape of ``/metrics`` gets."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    # -- serving ---------------------------------------------------------------------
    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve ``/metrics`` on ``host:port`` in a background thread; the bound address
        (port 0 picks a free port)."""
        from prometheus_client import start_http_server

        if self._server is not None:
            raise EunomiaError("serve metrics: already serving")
        try:
            self._server, self._thread = start_http_server(port, addr=host,
                                                           registry=self.registry)
        except OSError as exc:
            raise EunomiaError(f"serve metrics on {_hostport(host, port)}: "
                               f"{exc.strerror or exc}") from exc
        return host, int(self._server.server_port)

    def close(self) -> None:
        """Stop serving. Idempotent."""
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _layout(spec: ObjectSpec, type_id: int | None) -> Layout | None:
    if not type_id:
        return None
    from ..decode import layout_for

    return layout_for(spec.btf, type_id)


def _key_labels(key: Layout | None) -> tuple[str, ...]:
    """A struct key gives one label per field (``key_`` before names that clash)."""
    if key is None or not key.names:
        return ("key",)
    return tuple(f"key_{n}" if n in ("program", "map", "field", "le") or n.startswith("__")
                 else n for n in key.names)


def _unit_suffix(unit: str) -> str:
    unit = unit.strip().strip("()")
    return unit if unit and unit != "unit" else ""


def _clears(spec: MapSpec) -> bool:
    return bool((spec.sample or {}).get("clear_map", False))


def _add_slots(total: list[int] | None, slots: Sequence[int]) -> list[int]:
    if total is None:
        return list(slots)
    if len(total) < len(slots):
        total = total + [0] * (len(slots) - len(total))
    return [t + (slots[i] if i < len(slots) else 0) for i, t in enumerate(total)]


def _buckets(slots: Sequence[int], kind: str) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets and an estimated sum.

    log2: slot i counts integer values in [2^i, 2^(i+1)) (slot 0: 0 and 1), so its upper
    bound is ``le = 2^(i+1) - 1``. linear (step 1 from 0, as the text output draws it):
    slot i counts the value i. The map keeps no sum, so ``_sum`` is estimated with each
    bucket's midpoint — good for an average, not exact.
    """
    buckets: list[tuple[str, float]] = []
    running = 0
    estimate = 0.0
    for i, count in enumerate(slots):
        if kind == "linear_hist":
            low = high = float(i)
        else:
            low, high = (float(1 << i) if i else 0.0), float((1 << (i + 1)) - 1)
        running += count
        estimate += count * (low + high) / 2
        buckets.append((str(floatToGoString(high)),  # type: ignore[no-untyped-call]
                        float(running)))
    buckets.append(("+Inf", float(running)))
    return buckets, estimate


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return None
