from __future__ import annotations

import io
import json

from eunomia_bpf.output import JsonLinesSink, TextTableSink
from eunomia_bpf.output.histogram import linear_histogram, log2_histogram
from eunomia_bpf.sampler import MapSample, histogram_slots, sum_per_cpu


def test_log2_buckets_cover_powers_of_two() -> None:
    lines = log2_histogram([1, 0, 4, 2] + [0] * 22, "usecs")
    assert "usecs" in lines[0] and "distribution" in lines[0]
    ranges = [ln.split(":")[0].split() for ln in lines[1:]]
    assert ranges == [["0", "->", "1"], ["2", "->", "3"], ["4", "->", "7"], ["8", "->", "15"]]
    assert lines[3].count("*") == 40 and lines[4].count("*") == 20  # peak is full width


def test_linear_buckets_and_empty() -> None:
    lines = linear_histogram([0, 5, 5], "ms", base=10, step=5)
    assert lines[1].split(":")[0].split() == ["10", "->", "14"]
    assert lines[3].split(":")[0].split() == ["20", "->", "24"]
    assert log2_histogram([0] * 26, "x")[-1] == "(no values)"


def test_slots_found_in_struct_values_and_per_cpu_sums() -> None:
    assert histogram_slots({"slots": [1, 2], "comm": "x"}) == [1, 2]
    assert histogram_slots([3, 4]) == [3, 4]
    assert histogram_slots({"count": 3}) is None
    assert sum_per_cpu([1, 2, 3]) == 6
    assert sum_per_cpu([{"slots": [1, 0], "comm": "a"}, {"slots": [2, 5], "comm": "a"}]) == {
        "slots": [3, 5], "comm": "a"}


def test_sinks_render_samples() -> None:
    sample = MapSample("hists", "log2_hist", "usecs",
                       [{"key": 7, "value": {"slots": [0, 3, 1], "comm": "bash"}}])
    text = io.BytesIO()
    TextTableSink(text).samples(sample)
    out = text.getvalue().decode()
    assert "hists:" in out and "key = 7, comm = bash" in out and "2 -> 3" in out
    js = io.BytesIO()
    JsonLinesSink(js).samples(sample)
    assert json.loads(js.getvalue()) == {"map": "hists", "key": 7,
                                         "value": {"slots": [0, 3, 1], "comm": "bash"}}
    kv = io.BytesIO()
    TextTableSink(kv).samples(MapSample("counts", "default_kv", "", [{"key": 1, "value": 9}]))
    assert "1: 9" in kv.getvalue().decode()
