"""The metrics config file (eunomia exporter shape) and the listen address: parsing and
every mistake a user can make, each named where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eunomia_bpf.errors import EunomiaError
from eunomia_bpf.metrics_config import (
    LabelConfig,
    MetricConfig,
    MetricsConfigError,
    load_metrics_config,
    parse_listen_address,
    parse_metrics_config,
)

# the public eunomia-exporter example, as its README shows it
PUBLIC_YAML = """\
programs:
- name: opensnoop
  metrics:
    counters:
    - name: eunomia_file_open_counter
      description: test
      labels:
      - name: pid
      - name: comm
      - name: filename
        from: fname
  compiled_ebpf_filename: bpftools/examples/opensnoop/package.json
"""

TOML = """\
[[programs]]
name = "runqlat"

[[programs.metrics.histograms]]
name = "runqlat_usecs"
description = "run-queue latency"
map = "hists"
labels = [{ name = "comm" }]

[[programs.metrics.gauges]]
name = "runqlat_keys"
map = "hists"
labels = ["key"]
"""


def test_public_exporter_yaml_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "exporter.yaml"
    path.write_text(PUBLIC_YAML)
    config = load_metrics_config(path)
    entry = config.for_program("opensnoop")
    assert entry.metrics == (MetricConfig(
        "counter", "eunomia_file_open_counter", "test", None,
        (LabelConfig("pid", "pid"), LabelConfig("comm", "comm"),
         LabelConfig("filename", "fname"))),)


def test_toml_with_histograms_gauges_and_label_shorthand(tmp_path: Path) -> None:
    path = tmp_path / "metrics.toml"
    path.write_text(TOML)
    hist, gauge = load_metrics_config(path).for_program("other", "runqlat").metrics
    assert (hist.kind, hist.name, hist.map, hist.labels) == (
        "histogram", "runqlat_usecs", "hists", (LabelConfig("comm", "comm"),))
    assert (gauge.kind, gauge.labels) == ("gauge", (LabelConfig("key", "key"),))
    assert gauge.description  # a default help text: Prometheus wants one


def test_star_from_means_the_label_name() -> None:
    config = parse_metrics_config({"programs": [{"name": "p", "metrics": {"counters": [
        {"name": "c", "labels": [{"name": "pid", "from": "*"}]}]}}]})
    assert config.programs[0].metrics[0].labels == (LabelConfig("pid", "pid"),)


def test_unknown_program_lists_the_configured_ones(tmp_path: Path) -> None:
    path = tmp_path / "m.yml"
    path.write_text(PUBLIC_YAML)
    with pytest.raises(MetricsConfigError, match=r"no program named 'runqlat' "
                                                 r"\(it has: opensnoop\)"):
        load_metrics_config(path).for_program("runqlat")


def counters(*items: Any) -> dict[str, Any]:
    return {"programs": [{"name": "p", "metrics": {"counters": list(items)}}]}


@pytest.mark.parametrize(("data", "message"), [
    (None, r"\(top level\): expected a mapping, got nothing"),
    ({"progams": []}, r"\(top level\): unknown key 'progams'"),
    ({"programs": {}}, r"programs: expected a list, got a mapping"),
    ({"programs": []}, r"programs: no program is configured"),
    ({"programs": [{"name": "p"}]}, r"programs\[0\]: missing 'metrics'"),
    ({"programs": [{"name": "", "metrics": {}}]}, r"programs\[0\]\.name: expected a non-empty"),
    ({"programs": [{"name": "p", "metrics": {}}]}, r"programs\[0\]\.metrics: no counters"),
    ({"programs": [{"name": "p", "metrics": {"counter": []}}]},
     r"programs\[0\]\.metrics: unknown key 'counter' \(known: counters, gauges, histograms\)"),
    (counters({"name": "9lives"}), r"counters\[0\]\.name: '9lives' is not a valid Prometheus"),
    (counters({"name": "a-b"}), r"counters\[0\]\.name: 'a-b' is not a valid"),
    (counters({"description": "x"}), r"counters\[0\]: missing 'name'"),
    (counters({"name": "c", "value": "x"}), r"counters\[0\]: unknown key 'value'"),
    (counters({"name": "c", "description": 3}), r"counters\[0\]\.description: expected a string"),
    (counters({"name": "c"}, {"name": "c"}), r"metric 'c' is defined twice"),
    (counters({"name": "c", "labels": "comm"}), r"counters\[0\]\.labels: expected a list"),
    (counters({"name": "c", "labels": [{"from": "comm"}]}), r"labels\[0\]: missing 'name'"),
    (counters({"name": "c", "labels": [{"name": "le"}]}), r"labels\[0\]\.name: 'le' is reserved"),
    (counters({"name": "c", "labels": [{"name": "__x"}]}), r"'__x' is reserved"),
    (counters({"name": "c", "labels": ["comm", "comm"]}), r"label 'comm' appears twice"),
    (counters({"name": "c", "labels": [{"name": "f", "from": 3}]}),
     r"labels\[0\]\.from: expected a non-empty string, got a number"),
    ({"programs": [{"name": "p", "metrics": {"counters": [{"name": "c"}]}},
                   {"name": "p", "metrics": {"counters": [{"name": "c"}]}}]},
     r"programs\[1\]\.name: 'p' is configured twice"),
])
def test_malformed_configs_say_where(data: Any, message: str) -> None:
    with pytest.raises(MetricsConfigError, match=message) as caught:
        parse_metrics_config(data)
    assert str(caught.value).startswith("read metrics config: ")


def test_file_errors_are_one_line_eunomia_errors(tmp_path: Path) -> None:
    with pytest.raises(EunomiaError, match=r"missing\.yaml: No such file"):
        load_metrics_config(tmp_path / "missing.yaml")
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("programs: [\n")
    with pytest.raises(MetricsConfigError, match=r"bad\.yaml: invalid YAML"):
        load_metrics_config(bad_yaml)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[[programs]\n")
    with pytest.raises(MetricsConfigError, match=r"bad\.toml: invalid TOML"):
        load_metrics_config(bad_toml)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(MetricsConfigError, match="not UTF-8"):
        load_metrics_config(binary)


@pytest.mark.parametrize(("text", "expected"), [
    ("9100", ("0.0.0.0", 9100)),
    (":9100", ("0.0.0.0", 9100)),
    ("127.0.0.1:0", ("127.0.0.1", 0)),
    ("localhost:8080", ("localhost", 8080)),
    ("[::1]:9100", ("::1", 9100)),
])
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen_address(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("http", r"'http' is not a port number"),
    ("127.0.0.1:", r"'' is not a port number"),
    (":70000", r"port 70000 is out of range"),
    ("::1:9100", r"write an IPv6 address as \[ADDR\]:PORT"),
])
def test_bad_listen_addresses(text: str, message: str) -> None:
    with pytest.raises(MetricsConfigError, match=message):
        parse_listen_address(text)
