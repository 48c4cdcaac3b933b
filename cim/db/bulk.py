"""Fast bulk loading: PostgreSQL binary COPY built from column arrays with NumPy, no per-row Python objects.

A row of the binary COPY format is ``int16 field count`` followed by, for each field, ``int32 length``
(-1 for NULL) and the field's binary representation (big-endian). The encoder here lays out a whole chunk
of rows at once: fixed-width columns (``int2``, ``int4``, ``int8``, ``float8``, ``bool``) from NumPy arrays,
variable-width ones (``text``, ``jsonb``, ``bytea`` and PostGIS ``geometry`` as EWKB) from Arrow
string/binary arrays, scattered into one ``uint8`` buffer.

Geometry values are EWKB (``shapely.to_wkb(geoms, include_srid=True)``): PostGIS' binary input function
accepts it directly, so no text parsing happens on the server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from sqlalchemy import Connection

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_TRAILER = (-1).to_bytes(2, "big", signed=True)

_FIXED: dict[str, np.dtype[Any]] = {
    "int2": np.dtype(">i2"),
    "int4": np.dtype(">i4"),
    "int8": np.dtype(">i8"),
    "float8": np.dtype(">f8"),
    "bool": np.dtype("u1"),
}
_VARIABLE = {"text", "jsonb", "bytea", "geometry"}
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass
class CopyColumn:
    """One column of a bulk load.

    ``values``: a NumPy array for fixed-width types (NaN in ``float8`` means NULL unless ``null`` is given),
    or for variable-width types a ``pyarrow`` string/binary array, or a sequence of ``str``/``bytes``/None.
    ``null``: optional boolean mask of NULLs (True = NULL). A scalar ``values`` is broadcast to every row.
    """

    name: str
    pgtype: str
    values: Any
    null: NDArray[np.bool_] | None = None


def _as_arrow(values: Any, pgtype: str, n: int) -> pa.Array:
    binary = pgtype in {"bytea", "geometry"}
    if isinstance(values, str | bytes):
        values = [values] * n
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        values = pa.array(values, type=pa.large_binary() if binary else pa.large_string(), from_pandas=True)
    target = pa.large_binary() if binary else pa.large_string()
    if values.type != target:
        values = values.cast(target)
    return values


def _binary(offsets: NDArray[np.int64], data: NDArray[np.uint8], n: int) -> pa.Array:
    return pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), n, [None, pa.py_buffer(np.ascontiguousarray(offsets)), pa.py_buffer(data)]
    )


def _fixed_field(col: CopyColumn, n: int) -> pa.Array:
    """A fixed-width column as one binary value per row: int32 length (or -1) + big-endian value."""
    dtype = _FIXED[col.pgtype]
    arr = np.asarray(col.values)
    if arr.ndim == 0:
        arr = np.full(n, arr[()])
    null = np.zeros(n, dtype=bool) if col.null is None else np.asarray(col.null, dtype=bool)
    if col.pgtype == "float8":
        arr = arr.astype(np.float64)
        null = null | ~np.isfinite(arr)
    width = dtype.itemsize
    full = np.empty((n, 4 + width), dtype=np.uint8)
    full[:, :4] = np.where(null, -1, width).astype(">i4").view(np.uint8).reshape(n, 4)
    full[:, 4:] = np.ascontiguousarray(np.where(null, 0, arr).astype(dtype)).view(np.uint8).reshape(n, width)
    sizes = np.where(null, 4, 4 + width)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    data = full.reshape(-1) if not null.any() else full[np.arange(4 + width) < sizes[:, None]]
    return _binary(offsets, np.ascontiguousarray(data), n)


def _variable_field(col: CopyColumn, n: int) -> pa.Array:
    """A text/jsonb/bytea/geometry column as one binary value per row: int32 length (or -1) + bytes."""
    arrow = _as_arrow(col.values, col.pgtype, n)
    if len(arrow) != n:
        raise ValueError(f"column {col.name} has {len(arrow)} values for {n} rows")
    null = np.asarray(arrow.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if col.null is not None:
        null = null | np.asarray(col.null, dtype=bool)
    lengths = np.asarray(pc.binary_length(arrow).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    extra = 1 if col.pgtype == "jsonb" else 0
    head_width = 4 + extra
    head = np.empty((n, head_width), dtype=np.uint8)
    head[:, :4] = np.where(null, -1, lengths + extra).astype(">i4").view(np.uint8).reshape(n, 4)
    if extra:
        head[:, 4] = 1  # jsonb binary format version
    head_sizes = np.where(null, 4, head_width)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(head_sizes, out=offsets[1:])
    head_data = head.reshape(-1) if not (extra and null.any()) else head[np.arange(head_width) < head_sizes[:, None]]
    heads = _binary(offsets, np.ascontiguousarray(head_data), n)
    body = arrow.cast(pa.large_binary())
    if null.any():
        body = pc.if_else(pa.array(null), pa.scalar(b"", pa.large_binary()), body)
    body = body.fill_null(b"")
    return pc.binary_join_element_wise(heads, body, pa.scalar(b"", pa.large_binary()))


def encode_rows(columns: Sequence[CopyColumn], n: int) -> bytes:
    """Binary COPY rows (without signature or trailer) of ``n`` rows given as columns.

    Each column becomes one Arrow binary value per row (length prefix + value); Arrow's element-wise join
    then lays the rows out contiguously in C++, so no per-row Python runs and no per-byte index arrays.
    """
    if n == 0:
        return b""
    count = np.full(n, len(columns), dtype=">i2").view(np.uint8)
    parts: list[pa.Array] = [_binary(np.arange(n + 1, dtype=np.int64) * 2, count, n)]
    for col in columns:
        if col.pgtype in _FIXED:
            parts.append(_fixed_field(col, n))
        elif col.pgtype in _VARIABLE:
            parts.append(_variable_field(col, n))
        else:
            raise ValueError(f"unsupported COPY type {col.pgtype!r}")
    rows = pc.binary_join_element_wise(*parts, pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)[rows.offset : rows.offset + n + 1]
    return bytes(rows.buffers()[2].slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_pybytes())


def _row_count(columns: Sequence[CopyColumn]) -> int:
    for col in columns:
        if isinstance(col.values, str | bytes):
            continue
        arr = col.values
        if isinstance(arr, np.ndarray) and arr.ndim == 0:
            continue
        return len(arr)
    raise ValueError("at least one column must hold an array of values")


def copy_columns(conn: Connection, table: str, columns: Sequence[CopyColumn], *, chunk_rows: int = 50_000) -> int:
    """Append rows given as column arrays to ``table`` with binary COPY inside ``conn``'s transaction.

    Returns the number of rows written. Columns not listed get their defaults (ids, ``valid_from``…).
    """
    return copy_batches(conn, table, [columns], chunk_rows=chunk_rows)


def copy_batches(
    conn: Connection, table: str, batches: Iterable[Sequence[CopyColumn]], *, chunk_rows: int = 50_000
) -> int:
    """Like :func:`copy_columns` for several batches of the same columns, in one COPY statement."""
    return copy_encoded(conn, table, encode_batches(batches, chunk_rows=chunk_rows))


def _slice(col: CopyColumn, start: int, stop: int, n: int) -> CopyColumn:
    if start == 0 and stop == n:
        return col
    values = col.values
    if not (isinstance(values, str | bytes) or (isinstance(values, np.ndarray) and values.ndim == 0)):
        values = values[start:stop]
    null = None if col.null is None else col.null[start:stop]
    return CopyColumn(col.name, col.pgtype, values, null)


def take_rows(columns: Sequence[CopyColumn], order: NDArray[np.int64]) -> list[CopyColumn]:
    """The columns with their rows in ``order`` (a permutation of the rows; scalars stay as they are)."""
    out: list[CopyColumn] = []
    index = pa.array(order)
    for col in columns:
        values = col.values
        if isinstance(values, np.ndarray):
            values = values if values.ndim == 0 else values[order]
        elif isinstance(values, pa.Array | pa.ChunkedArray):
            values = values.take(index)
        elif not isinstance(values, str | bytes):
            values = [values[i] for i in order.tolist()]
        out.append(CopyColumn(col.name, col.pgtype, values, None if col.null is None else col.null[order]))
    return out


def upsert_columns(conn: Connection, table: str, columns: Sequence[CopyColumn], key: str) -> int:
    """Insert rows given as columns, updating the existing row where ``key`` (a unique column) matches.

    Loads a temporary table with binary COPY, then ``INSERT … ON CONFLICT (key) DO UPDATE``; returns the
    number of rows written.
    """
    names = [c.name for c in columns]
    for name in [table, key, *names]:
        if not _IDENT.match(name):
            raise ValueError(f"invalid SQL identifier {name!r}")
    staging = f"_staging_{table}"
    conn.exec_driver_sql(f"CREATE TEMP TABLE {staging} (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP")
    copy_columns(conn, staging, columns)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != key)
    cols = ", ".join(names)
    result = conn.exec_driver_sql(
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {staging} ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )
    conn.exec_driver_sql(f"DROP TABLE {staging}")
    return int(result.rowcount or 0)


def drop_spatial_index(conn: Connection, table: str, column: str) -> None:
    """Drop the GiST index of a geometry column (inside the caller's transaction) before a large load."""
    if not (_IDENT.match(table) and _IDENT.match(column)):
        raise ValueError("invalid SQL identifier")
    conn.exec_driver_sql(f"DROP INDEX IF EXISTS {table}_{column}_gist")


def create_spatial_index(conn: Connection, table: str, column: str) -> None:
    """(Re)create the GiST index ``<table>_<column>_gist`` of a geometry column, as the migrations name it."""
    if not (_IDENT.match(table) and _IDENT.match(column)):
        raise ValueError("invalid SQL identifier")
    conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {table}_{column}_gist ON {table} USING gist ({column})")


def drop_foreign_keys(conn: Connection, table: str) -> list[tuple[str, str]]:
    """Drop the foreign keys *of* ``table`` (inside the caller's transaction) before a large load.

    A foreign key is checked by a trigger once per inserted row (several microseconds each: most of the
    server's COPY time for narrow rows); re-adding it with :func:`restore_foreign_keys` validates the whole
    table in one join instead. Returns (name, definition) pairs for :func:`restore_foreign_keys`. Dropping a
    foreign key locks the referenced table (e.g. ``dataset``) exclusively until the transaction ends.
    """
    if not _IDENT.match(table):
        raise ValueError("invalid SQL identifier")
    rows = conn.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        f"WHERE conrelid = '{table}'::regclass AND contype = 'f' ORDER BY conname"
    ).all()
    saved = [(str(name), str(definition)) for name, definition in rows]
    for name, _ in saved:
        conn.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {_quote(name)}")
    return saved


def restore_foreign_keys(conn: Connection, table: str, saved: Sequence[tuple[str, str]]) -> None:
    """Re-add foreign keys dropped by :func:`drop_foreign_keys`; PostgreSQL validates every row (one join)."""
    if not _IDENT.match(table):
        raise ValueError("invalid SQL identifier")
    for name, definition in saved:
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD CONSTRAINT {_quote(name)} {definition}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def estimated_rows(conn: Connection, table: str) -> int:
    """The planner's row estimate of a table (cheap, from ``pg_class``; 0 for a never-analysed empty table)."""
    if not _IDENT.match(table):
        raise ValueError("invalid SQL identifier")
    value = conn.exec_driver_sql(f"SELECT reltuples::bigint FROM pg_class WHERE oid = '{table}'::regclass").scalar()
    return max(int(value or 0), 0)


def encode_batches(
    batches: Iterable[Sequence[CopyColumn]], *, chunk_rows: int = 50_000
) -> Iterator[tuple[list[str], int, bytes]]:
    """Encode batches of columns into binary COPY chunks: yields (column names, row count, bytes).

    Lets the encoding run in another thread than the one that talks to the server (see :func:`copy_encoded`).
    """
    for batch in batches:
        names = [c.name for c in batch]
        n = _row_count(batch)
        for start in range(0, n, chunk_rows):
            stop = min(start + chunk_rows, n)
            yield names, stop - start, encode_rows([_slice(c, start, stop, n) for c in batch], stop - start)


def copy_encoded(conn: Connection, table: str, chunks: Iterable[tuple[list[str], int, bytes]]) -> int:
    """Write pre-encoded chunks (from :func:`encode_batches`) with one binary COPY; returns the row count."""
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        return 0
    names = first[0]
    for name in [table, *names]:
        if not _IDENT.match(name):
            raise ValueError(f"invalid SQL identifier {name!r}")
    raw = conn.connection.driver_connection
    assert raw is not None
    written = 0
    statement = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    with raw.cursor() as cur, cur.copy(statement) as copy:
        copy.write(_SIGNATURE)
        for chunk_names, n, data in _chain_chunks(first, chunks):
            if chunk_names != names:
                raise ValueError("all chunks of one COPY must have the same columns")
            copy.write(data)
            written += n
        copy.write(_TRAILER)
    return written


def _chain_chunks(
    first: tuple[list[str], int, bytes], rest: Iterator[tuple[list[str], int, bytes]]
) -> Iterator[tuple[list[str], int, bytes]]:
    yield first
    yield from rest
