"""The Prometheus exporter without a kernel: bundled packages' specs, batches and map
samples made here, the exposition read back with prometheus-client's own parser."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from eunomia_bpf.decode import layout_for
from eunomia_bpf.metrics_config import MetricsConfigError, parse_metrics_config
from eunomia_bpf.output.metrics import OTHER, MetricsExporter
from eunomia_bpf.package import read_package
from eunomia_bpf.resolve import resolve
from eunomia_bpf.runner import Batch
from eunomia_bpf.sampler import MapSample
from eunomia_bpf.spec import ObjectSpec

ALL_TASKS = 2**32 - 1


def spec(name: str) -> ObjectSpec:
    return ObjectSpec.from_package(read_package(resolve(name).data))


def scrape(exporter: MetricsExporter) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] for every sample of the exposition."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(exporter.exposition().decode()):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def opensnoop_batch(comms: list[str], pids: list[int]) -> Batch:
    s = spec("opensnoop")
    layout = layout_for(s.btf, s.exports[0].type_id)
    records = np.zeros(len(comms), dtype=layout.dtype)
    records["comm"] = [c.encode() for c in comms]
    records["pid"] = pids
    return Batch("events", records=records, layout=layout)


def hist_sample(slots: list[int], key: int = ALL_TASKS, comm: str = "") -> MapSample:
    return MapSample("hists", "log2_hist", "usecs",
                     [{"key": key, "value": {"slots": slots + [0] * (26 - len(slots)),
                                             "comm": comm}}])


def test_events_are_counted_per_map_with_the_chosen_field_as_label() -> None:
    exporter = MetricsExporter(spec("opensnoop"), program="opensnoop", labels=["comm"])
    exporter.observe(opensnoop_batch(["cat", "cat", "bash"], [1, 1, 2]))
    exporter.observe(opensnoop_batch(["cat"], [3]))
    got = {(lb["program"], lb["map"], lb["comm"]): v
           for lb, v in scrape(exporter)["eunomia_events_total"]}
    assert got == {("opensnoop", "events", "cat"): 3, ("opensnoop", "events", "bash"): 1}


def test_label_sets_beyond_the_limit_fold_into_other(caplog: pytest.LogCaptureFixture) -> None:
    exporter = MetricsExporter(spec("opensnoop"), labels=["pid"], max_series=3)
    with caplog.at_level(logging.WARNING, logger="eunomia_bpf.metrics"):
        exporter.observe(opensnoop_batch(["x"] * 6, [1, 2, 3, 4, 5, 5]))
        exporter.observe(opensnoop_batch(["x"] * 2, [1, 9]))
    got = {lb["pid"]: v for lb, v in scrape(exporter)["eunomia_events_total"]}
    assert got == {"1": 2, "2": 1, "3": 1, OTHER: 4}
    assert [r.getMessage() for r in caplog.records] == [
        f"metric eunomia_events_total has 3 label sets; further ones are counted as {OTHER}"]


def test_log2_map_is_a_cumulative_prometheus_histogram() -> None:
    exporter = MetricsExporter(spec("runqlat"), program="runqlat")
    exporter.observe(Batch("hists", sample=hist_sample([1, 2, 0, 4])))
    samples = scrape(exporter)
    buckets = [(lb["le"], v) for lb, v in samples["eunomia_map_hists_usecs_bucket"]]
    assert buckets[:5] == [("1.0", 1), ("3.0", 3), ("7.0", 3), ("15.0", 7), ("31.0", 7)]
    assert len(buckets) == 27 and buckets[-1] == ("+Inf", 7)
    assert [float(le) for le, _ in buckets[:-1]] == [2.0 ** (i + 1) - 1 for i in range(26)]
    labels, count = samples["eunomia_map_hists_usecs_count"][0]
    assert count == 7 and labels == {"program": "runqlat", "map": "hists", "key": str(ALL_TASKS)}
    # midpoints: 1 * 0.5 + 2 * 2.5 + 4 * 11.5
    assert samples["eunomia_map_hists_usecs_sum"][0][1] == pytest.approx(51.5)
    # without clear_map, the map holds totals since start: a later reading replaces
    exporter.observe(Batch("hists", sample=hist_sample([2, 2, 0, 4])))
    assert scrape(exporter)["eunomia_map_hists_usecs_count"][0][1] == 8


def test_cleared_maps_add_up_their_readings() -> None:
    exporter = MetricsExporter(with_sample(spec("runqlat"), "hists", type="log2_hist",
                                           unit="usecs", clear_map=True))
    exporter.observe_sample(hist_sample([1, 2]))
    exporter.observe_sample(hist_sample([1, 0, 5]))
    buckets = [v for _, v in scrape(exporter)["eunomia_map_hists_usecs_bucket"]]
    assert buckets[:3] == [2, 4, 9] and buckets[-1] == 9


def with_sample(s: ObjectSpec, map_name: str, **sample: Any) -> ObjectSpec:
    """``s`` with ``map_name`` sampled as given (the bundled packages lack some kinds)."""
    maps = tuple(dataclasses.replace(m, sample=sample) if m.name == map_name else m
                 for m in s.maps)
    return dataclasses.replace(s, maps=maps)


def test_default_kv_maps_are_gauges_of_the_map_as_it_is_now() -> None:
    exporter = MetricsExporter(with_sample(spec("runqlat"), "start", type="default_kv"),
                               program="runqlat")
    exporter.observe_sample(MapSample("start", "default_kv", "", [
        {"key": 7, "value": 100}, {"key": 8, "value": 200}]))
    exporter.observe_sample(MapSample("start", "default_kv", "", [{"key": 8, "value": 300}]))
    assert scrape(exporter)["eunomia_map_start"] == [
        ({"program": "runqlat", "map": "start", "key": "8"}, 300)]


def test_gauges_of_struct_values_need_a_value_field() -> None:
    s = with_sample(spec("runqlat"), "hists", type="default_kv")
    config = parse_metrics_config({"programs": [{"name": "runqlat", "metrics": {
        "gauges": [{"name": "g", "map": "hists"}]}}]})
    with pytest.raises(MetricsConfigError, match=r"gauge g: the values of map hists are "
                                                 r"structs; say which field \(`value:`\): "
                                                 r"slots, comm"):
        MetricsExporter(s, config=config.for_program("runqlat"))


def test_config_metrics_replace_the_defaults() -> None:
    config = parse_metrics_config({"programs": [{"name": "runqlat", "metrics": {
        "histograms": [{"name": "runq_latency_usecs", "labels": [{"name": "command",
                                                                  "from": "comm"}]}],
    }}]}).for_program("runqlat")
    exporter = MetricsExporter(spec("runqlat"), config=config)
    exporter.observe_sample(MapSample("hists", "log2_hist", "usecs", [
        {"key": 1, "value": {"slots": [1] + [0] * 25, "comm": "a"}},
        {"key": 2, "value": {"slots": [2] + [0] * 25, "comm": "a"}},
        {"key": 3, "value": {"slots": [0, 5] + [0] * 24, "comm": "b"}}]))
    samples = scrape(exporter)
    assert "eunomia_map_hists_usecs_count" not in samples
    counts = {lb["command"]: v for lb, v in samples["runq_latency_usecs_count"]}
    assert counts == {"a": 3, "b": 5}  # keys with the same label set add up


@pytest.mark.parametrize(("metrics", "message"), [
    ({"counters": [{"name": "c", "labels": [{"name": "f", "from": "fnam"}]}]},
     (r"counter c: label f: no event field 'fnam' \(events: ts, pid, uid, ret, flags, comm, "
     r"fname\)")),
    ({"counters": [{"name": "c", "map": "hists"}]}, r"map 'hists' is not an event map"),
    ({"histograms": [{"name": "h"}]}, (r"say which map \(`map:`\); log2_hist or linear_hist "
                                      r"maps: none")),
])
def test_config_naming_what_the_program_lacks_fails_before_loading(
        metrics: dict[str, Any], message: str) -> None:
    config = parse_metrics_config({"programs": [{"name": "opensnoop", "metrics": metrics}]})
    with pytest.raises(MetricsConfigError, match=message):
        MetricsExporter(spec("opensnoop"), config=config.for_program("opensnoop"))


def test_unknown_label_field_lists_the_fields() -> None:
    with pytest.raises(MetricsConfigError, match=r"--label cmd: no event field of that name "
                                                 r"\(events: ts, pid, .*comm, fname\)"):
        MetricsExporter(spec("opensnoop"), labels=["cmd"])


def test_histograms_come_only_from_histogram_maps() -> None:
    config = parse_metrics_config({"programs": [{"name": "runqlat", "metrics": {
        "gauges": [{"name": "g", "map": "hists"}]}}]})
    with pytest.raises(MetricsConfigError, match=r"map 'hists' is not a sampled default_kv"):
        MetricsExporter(spec("runqlat"), config=config.for_program("runqlat"))
