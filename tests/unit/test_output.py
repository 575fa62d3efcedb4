from __future__ import annotations

import io
import json

import orjson

from eunomia_bpf.output import JsonLinesSink, TextTableSink

NAMES = ("pid", "comm", "ok")


def cols(pids: list[int], comms: list[str], oks: list[bool]) -> dict[str, list[object]]:
    return {"pid": list(pids), "comm": list(comms), "ok": list(oks)}


def test_json_lines_one_object_per_event_with_field_names() -> None:
    out = io.BytesIO()
    sink = JsonLinesSink(out)
    sink.records("events", NAMES, cols([1, 22], ["a", "bash"], [True, False]), 2)
    sink.records("events", NAMES, cols([], [], []), 0)
    lines = out.getvalue().splitlines()
    assert [orjson.loads(ln) for ln in lines] == [
        {"pid": 1, "comm": "a", "ok": True}, {"pid": 22, "comm": "bash", "ok": False}]


def test_json_labels_sources_when_several_and_handles_big_ints() -> None:
    out = io.BytesIO()
    JsonLinesSink(out, label_sources=True).records(
        "rb2", ("x",), {"x": [1 << 100]}, 1)
    assert json.loads(out.getvalue()) == {"x": 1 << 100, "map": "rb2"}


def test_text_table_is_aligned_with_time_and_upper_case_header() -> None:
    out = io.BytesIO()
    sink = TextTableSink(out, widths={"events": {"PID": 7, "COMM": 16}})
    sink.records("events", NAMES, cols([1, 123456], ["a", "bash"], [True, False]), 2)
    sink.records("events", NAMES, cols([7], ["zsh"], [True]), 1)
    lines = out.getvalue().decode().splitlines()
    assert lines[0].split() == ["TIME", "PID", "COMM", "OK"]
    assert len(lines) == 4  # one header only
    starts = [ln.index(word) for ln, word in zip(lines, ["COMM", "a", "bash", "zsh"])]
    assert len(set(starts)) == 1, lines
    assert lines[1].split()[1:] == ["1", "a", "true"]
    assert lines[1][:2].isdigit() and lines[1][2] == ":"


def test_text_no_header_and_trace_lines() -> None:
    out = io.BytesIO()
    sink = TextTableSink(out, header=False)
    sink.records("events", ("pid",), {"pid": [5]}, 1)
    sink.lines(["cat-1 [000] bpf_trace_printk: hi"])
    text = out.getvalue().decode().splitlines()
    assert "PID" not in text[0] and text[1].endswith("hi")


def test_text_long_value_shifts_only_its_row() -> None:
    out = io.BytesIO()
    sink = TextTableSink(out, widths={"events": {"PID": 7, "COMM": 4}})
    sink.records("events", NAMES, cols([1, 2, 3], ["a", "a-very-long-name", "b"],
                                       [True, True, False]), 3)
    lines = out.getvalue().decode().splitlines()
    assert lines[1].index("true") == lines[3].index("false") == lines[0].index("OK")
    assert lines[2].index("true") > lines[0].index("OK")


def test_json_escapes_strings_and_handles_mixed_values() -> None:
    out = io.BytesIO()
    sink = JsonLinesSink(out)
    tricky = ['a"b\\c', "new\nline", "%d %s", "ünï", "},{"]
    sink.records("ev", ("s", "f", "l", "n%"),
                 {"s": tricky, "f": [1.5, float("inf"), 0.0, -2.0, 3.0],
                  "l": [[1, 2], [], [3], [4], [5]], "n%": [1, 2, 3, 4, 5]}, 5)
    rows = [json.loads(ln) for ln in out.getvalue().decode().splitlines()]
    assert [r["s"] for r in rows] == tricky
    assert rows[0]["f"] == 1.5 and rows[0]["l"] == [1, 2] and rows[4]["n%"] == 5


def test_json_mixed_column_falls_back_to_exact_values() -> None:
    out = io.BytesIO()
    JsonLinesSink(out).records("ev", ("e", "b"), {"e": ["ON", 7, "OFF"],
                                                  "b": [True, False, True]}, 3)
    rows = [json.loads(ln) for ln in out.getvalue().decode().splitlines()]
    assert [r["e"] for r in rows] == ["ON", 7, "OFF"]
    assert [r["b"] for r in rows] == [True, False, True]
