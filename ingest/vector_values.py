"""Vectorised conversion of source attribute columns (Arrow) into database column values.

Text stays in Arrow arrays (fed straight to binary COPY); numbers become NumPy float arrays with NaN for
missing or unparsable values; the unmapped rest becomes one JSON text per row (``attributes`` JSONB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from cim.vocabulary import BUILDING_USES
from ingest.fields import USE_VALUES

_NUMBER = r"-?\d+(?:\.\d+)?"


def text(values: pa.Array) -> pa.Array:
    """Any column as trimmed UTF-8 text; empty strings become NULL. Whole floats print without '.0'."""
    if pa.types.is_floating(values.type):
        whole = pc.equal(values, pc.floor(values))
        as_int = pc.cast(pc.if_else(whole, values, None), pa.int64(), safe=False)
        values = pc.coalesce(pc.cast(as_int, pa.string()), pc.cast(values, pa.string()))
    elif not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, trimmed.type), trimmed)


def number(values: pa.Array) -> NDArray[np.float64]:
    """Any column as float64 (NaN when missing); text like '25.5m' or '约30' gives its first number."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_decimal(values.type):
        return np.array(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_boolean(values.type):
        return np.array(pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    return _first_match(values, _NUMBER)


def _first_match(values: pa.Array, pattern: str) -> NDArray[np.float64]:
    """The first regex group (a number) of each text value as float64, NaN where none (Arrow C++ kernels)."""
    strings = pc.cast(values, pa.string())
    found = pc.struct_field(pc.extract_regex(strings, f"(?P<v>{pattern})"), [0])
    return np.array(pc.cast(found, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def year(values: pa.Array) -> NDArray[np.float64]:
    """Years (e.g. 1995, '1995年', '1990s', '1995-06-01') as float64, NaN when missing or implausible."""
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        out = number(values)
    elif pa.types.is_date(values.type) or pa.types.is_timestamp(values.type):
        out = np.array(pc.cast(pc.year(values), pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    else:
        out = _first_match(values, r"(?:1[6-9]|20)\d\d")
    out = np.array(out, dtype=np.float64)
    out[(out < 1000) | (out > 2100)] = np.nan
    return out


def ratio(values: pa.Array) -> NDArray[np.float64]:
    """A share in 0..1; values above 1 are read as percent (35 → 0.35)."""
    out = number(values)
    return np.where(out > 1.0, out / 100.0, out)


def safety_class(values: pa.Array) -> pa.Array:
    """House safety classes A–D from text like 'C', 'c级', 'D级危房'; anything else NULL."""
    upper = pc.utf8_upper(pc.cast(values, pa.string()))
    return pc.struct_field(pc.extract_regex(upper, "(?P<c>[ABCD])"), [0])


def building_use(values: pa.Array, extra: Mapping[str, str] | None = None) -> tuple[pa.Array, pa.Array]:
    """Source use values → :data:`cim.vocabulary.BUILDING_USES` keys, and the unmapped source values.

    Returns (use keys, NULL where the source is empty; source value where it was not understood, else NULL).
    """
    table = {**USE_VALUES, **{k: k for k in BUILDING_USES}, **(extra or {})}
    lowered = {k.lower(): v for k, v in table.items()}
    keys = pa.array(list(lowered), type=pa.string())
    targets = pa.array(list(lowered.values()), type=pa.string())
    strings = text(values)
    index = pc.index_in(pc.utf8_lower(strings), value_set=keys)
    mapped = pc.take(targets, index)
    unknown = pc.and_(pc.is_valid(strings), pc.is_null(index))
    uses = pc.if_else(unknown, pa.scalar("other"), mapped)
    sources = pc.if_else(unknown, strings, pa.scalar(None, pa.string()))
    return uses, sources


def attributes_json(batch: pa.RecordBatch, columns: Sequence[str], extra: Mapping[str, pa.Array]) -> pa.Array | str:
    """One JSON object text per row of the named columns plus ``extra`` ones (NULL-valued keys left out
    only when the whole column is NULL). ``"{}"`` when there is nothing to keep."""
    data: dict[str, pa.Array] = {}
    for name in columns:
        col = batch.column(name)
        if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
            continue
        if col.null_count < len(col):
            data[name] = col
    for name, col in extra.items():
        if col.null_count < len(col):
            data[name] = col
    if not data:
        return "{}"
    frame = pa.table(data).to_pandas()
    lines = frame.to_json(orient="records", lines=True, force_ascii=False, date_format="iso")
    rows = lines.rstrip("\n").split("\n")
    if len(rows) != batch.num_rows:
        # A value with an embedded newline cannot occur (JSON escapes it); guard anyway.
        raise ValueError("attribute JSON rows do not match the batch")
    return pa.array(rows, type=pa.large_string())
