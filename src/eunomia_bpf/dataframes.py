"""Batches as pandas DataFrames and Arrow record batches (the ``data`` extra).

pandas and pyarrow are optional: they are imported only here, only when asked for, and
their absence is an error that names the extra to install. Numeric members keep their
C type (``u32`` stays ``uint32``) by taking the numpy column itself when it holds
exactly the decoded values; everything else (strings, enums, bitfields, arrays,
nested structs) comes from the decoded Python values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import EunomiaError

if TYPE_CHECKING:
    import numpy as np

    from .runner import Batch

__all__ = ["batch_to_arrow", "batch_to_pandas", "typed_columns"]

EXTRA = "data"


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EunomiaError(f"convert batch: {module} is not installed "
                           f"(pip install 'eunomia-bpf[{EXTRA}]')") from exc


def typed_columns(batch: Batch) -> dict[str, np.ndarray[Any, Any] | list[Any]]:
    """Columns of ``batch``: numpy arrays for plain numbers, Python values otherwise."""
    columns: dict[str, Any] = dict(batch.columns())
    records = batch.records
    if records is None or records.dtype.names is None:
        return columns
    for name, values in columns.items():
        if name not in records.dtype.names or not values:
            continue
        raw = records[name]
        # bools, enum names and bitfields decode to something else than the raw numbers
        if raw.ndim != 1 or raw.dtype.kind not in "iuf" or type(values[0]) not in (int, float):
            continue
        if raw.tolist() == values:
            columns[name] = raw.copy()  # not a view into the reader's buffer
    return columns


def batch_to_pandas(batch: Batch) -> Any:
    """One row per event (or per map entry, or per trace line)."""
    pd = _require("pandas")
    return pd.DataFrame(typed_columns(batch))


def batch_to_arrow(batch: Batch) -> Any:
    """A ``pyarrow.RecordBatch`` with one row per event (or map entry, or trace line)."""
    pa = _require("pyarrow")
    columns = typed_columns(batch)
    arrays = []
    for values in columns.values():
        try:
            arrays.append(pa.array(values))
        except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
            # beyond int64 with no numpy column to say so (u64 bitfields, __int128):
            # unsigned 64 bits where they fit, else decimal text
            try:
                arrays.append(pa.array(values, type=pa.uint64()))
            except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array([None if v is None else str(v) for v in values]))
    return pa.RecordBatch.from_arrays(arrays, names=list(columns))
