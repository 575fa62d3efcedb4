"""Batches as pandas DataFrames and Arrow record batches: C types kept, text decoded,
and a clear error naming the extra when the library is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from eunomia_bpf.decode import layout_for
from eunomia_bpf.errors import EunomiaError
from eunomia_bpf.package import read_package
from eunomia_bpf.resolve import resolve
from eunomia_bpf.runner import Batch
from eunomia_bpf.sampler import MapSample
from eunomia_bpf.spec import ObjectSpec


def opensnoop_batch() -> Batch:
    spec = ObjectSpec.from_package(read_package(resolve("opensnoop").data))
    layout = layout_for(spec.btf, spec.exports[0].type_id)
    records = np.zeros(3, dtype=layout.dtype)
    records["ts"] = [1, 2, 2**64 - 1]  # u64 beyond int64
    records["pid"] = [10, 11, 12]
    records["uid"] = [0, 1000, 2**32 - 1]
    records["ret"] = [3, -2, 4]
    records["comm"] = [b"cat", b"bash", b"python3"]
    records["fname"] = [b"/etc/hostname", b"/nope", "/tmp/\u00e9".encode()]
    return Batch("events", records=records, layout=layout)


def test_to_pandas_keeps_c_types_and_decodes_text() -> None:
    pytest.importorskip("pandas", reason="pandas is not installed (extra: data)")
    df = opensnoop_batch().to_pandas()
    assert list(df.columns) == ["ts", "pid", "uid", "ret", "flags", "comm", "fname"]
    assert (str(df["ts"].dtype), str(df["pid"].dtype), str(df["uid"].dtype)) == (
        "uint64", "int32", "uint32")
    assert df["ts"].tolist()[-1] == 2**64 - 1 and df["ret"].tolist() == [3, -2, 4]
    assert df["comm"].tolist() == ["cat", "bash", "python3"]
    assert df["fname"].tolist()[-1] == "/tmp/\u00e9"
    assert df.groupby("comm").size().to_dict() == {"bash": 1, "cat": 1, "python3": 1}


def test_to_arrow_has_typed_columns() -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (extra: data)")
    rb = opensnoop_batch().to_arrow()
    assert isinstance(rb, pa.RecordBatch) and rb.num_rows == 3
    assert rb.schema.field("ts").type == pa.uint64()
    assert rb.schema.field("uid").type == pa.uint32()
    assert rb.schema.field("comm").type == pa.string()
    assert rb.column("ts").to_pylist()[-1] == 2**64 - 1


def test_samples_and_trace_lines_convert_too() -> None:
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (extra: data)")
    pytest.importorskip("pandas", reason="pandas is not installed (extra: data)")
    sample = MapSample("hists", "log2_hist", "usecs",
                       [{"key": 2**32 - 1, "value": {"slots": [1, 2], "comm": ""}}])
    rb = Batch("hists", sample=sample).to_arrow()
    assert rb.column("key").to_pylist() == [2**32 - 1]
    assert rb.schema.field("value").type == pa.struct([("slots", pa.list_(pa.int64())),
                                                       ("comm", pa.string())])
    # a key beyond int64 that no numpy column describes still converts
    big = MapSample("m", "default_kv", "", [{"key": 2**64 - 1, "value": 1}])
    assert Batch("m", sample=big).to_arrow().column("key").to_pylist() == [2**64 - 1]
    df = Batch("trace_pipe", lines=["a", "b"]).to_pandas()
    assert df["trace"].tolist() == ["a", "b"]


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    batch = opensnoop_batch()
    with pytest.raises(EunomiaError, match=r"pandas is not installed "
                                           r"\(pip install 'eunomia-bpf\[data\]'\)"):
        batch.to_pandas()
    with pytest.raises(EunomiaError, match=r"pyarrow is not installed"):
        batch.to_arrow()
