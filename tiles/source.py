"""Reading live features from the database as column arrays (binary WKB, no ORM objects).

Centroids and bounds are computed by PostGIS (in its own process) so the builder never parses geometry it
does not render. All coordinates are CGCS2000 (EPSG:4490) lon/lat degrees; heights are normal heights (m).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim.crs import CGCS2000
from cim.db.engine import connect_url

BBox = tuple[float, float, float, float]
"""(west, south, east, north) degrees: a :class:`cim.values.BBox` or any 4-tuple."""


@dataclass
class Columns:
    """Named columns of equal length (NumPy arrays or lists)."""

    data: dict[str, Any]

    def __len__(self) -> int:
        return len(next(iter(self.data.values()))) if self.data else 0

    def __getitem__(self, name: str) -> Any:
        return self.data[name]

    def concat(self, other: Columns) -> Columns:
        """These rows, then ``other``'s (same column names)."""
        out: dict[str, Any] = {}
        for k, v in self.data.items():
            w = other.data[k]
            out[k] = np.concatenate([v, w]) if isinstance(v, np.ndarray) else [*v, *w]
        return Columns(out)

    def take(self, idx: NDArray[np.int64]) -> Columns:
        """The rows ``idx`` (lists are indexed element-wise)."""
        out: dict[str, Any] = {}
        for k, v in self.data.items():
            out[k] = v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]
        return Columns(out)


def _driver(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


def _fetch(raw: Any, sql: str, params: dict[str, Any], names: list[str], kinds: dict[str, Any]) -> Columns:
    with raw.cursor(binary=True) as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    data: dict[str, Any] = {}
    for name, col in zip(names, cols, strict=True):
        kind = kinds.get(name)
        if kind is None:
            data[name] = list(col)
        else:
            data[name] = np.asarray(col, dtype=kind) if col else np.zeros(0, dtype=kind)
    return Columns(data)


def query(conn: Connection, sql: str, params: dict[str, Any], names: list[str], kinds: dict[str, Any]) -> Columns:
    """Run ``sql`` (psycopg ``%(name)s`` parameters, binary results) and return its rows as named columns;
    columns named in ``kinds`` become NumPy arrays of that dtype, the others lists."""
    return _fetch(_driver(conn), sql, params, names, kinds)


def bbox_sql(column: str, bbox: BBox | None) -> tuple[str, dict[str, Any]]:
    """`` AND column && envelope`` (psycopg named parameters) for an optional bbox, and its parameters."""
    if bbox is None:
        return "", {}
    w, s, e, n = bbox
    return (
        f" AND {column} && ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, {CGCS2000})",
        {"w": w, "s": s, "e": e, "n": n},
    )


_BUILDING_COLUMNS = (
    "b.id, ST_AsBinary(b.footprint), b.base_height, b.height, coalesce(b.storeys, -1)::int4, "
    "coalesce(b.year_built, -1)::int4, coalesce(b.use, ''), coalesce(b.name, ''), "
    "coalesce(b.safety_class, ''), coalesce(b.cim_level, -1)::int4 FROM building b "
)
_BUILDING_NAMES = ["id", "wkb", "base", "height", "storeys", "year_built", "use", "name", "safety_class", "cim_level"]
_BUILDING_KINDS: dict[str, Any] = {"id": np.int64, "base": np.float64, "height": np.float64, "storeys": np.int32}
_BUILDING_KINDS.update({"year_built": np.int32, "cim_level": np.int32})


NUMERIC_PAGE_ROWS = 1_000_000
"""Keys per window (so rows per window, at most) of :func:`numeric_columns`."""
_SEND = {np.dtype(np.int64): ("int8send", ">i8"), np.dtype(np.float64): ("float8send", ">f8")}


NUMERIC_READERS = 2
"""Connections that read the key ranges of :func:`numeric_columns` at once (one per core here)."""
NUMERIC_SPLIT_FROM = 200_000
"""Key span from which :func:`numeric_columns` splits the read over :data:`NUMERIC_READERS` connections."""


def numeric_columns(
    raw: Any, fields: dict[str, tuple[str, Any]], source: str, params: dict[str, Any], *, url: str | None = None
) -> Columns:
    """Numeric columns of many rows without a Python object per value: ``fields`` = name → (SQL expression,
    int64 | float64), the first one an ``id`` key that orders the rows (unique, not null); ``source`` the
    ``FROM … WHERE …`` clause (it must end in a WHERE condition).

    PostgreSQL packs each column of a window of :data:`NUMERIC_PAGE_ROWS` keys into one
    bytea of big-endian values (``int8send`` / ``float8send``, ``string_agg``), which NumPy reads as is:
    memory is the columns plus one window per reader. A NULL value is an error (the page would come back short).

    The aggregates carry no ``ORDER BY`` of their own: PostgreSQL 15 would sort each page once per column
    (2.1 s instead of 0.8 s for a million buildings). Every aggregate of one query sees the rows in the same
    sequence, so the columns stay aligned whatever that sequence; the rows are put in key order here
    (one sort of the keys, when they are not in order already).

    Given the database ``url`` (libpq), a key span of :data:`NUMERIC_SPLIT_FROM` or more is cut into
    :data:`NUMERIC_READERS` ranges read at once: ``raw``'s transaction reads the first, and each other range
    a connection of its own inside a snapshot exported by that transaction (the same rows as one reader)."""
    key, (key_expr, _) = next(iter(fields.items()))
    ranges: list[tuple[int, int]] = [(-(2**63), 2**63 - 1)]
    if url is not None and NUMERIC_READERS > 1:
        with raw.cursor() as cur:
            cur.execute(f"SELECT min({key_expr}), max({key_expr}) {source}", params)
            lo, hi = cur.fetchone()
        if lo is not None and hi - lo >= NUMERIC_SPLIT_FROM:
            cuts = [lo - 1 + (hi - lo + 1) * i // NUMERIC_READERS for i in range(NUMERIC_READERS + 1)]
            ranges = list(itertools.pairwise(cuts))
    if len(ranges) == 1:
        parts = [_numeric_range(raw, fields, source, params, *ranges[0])]
    else:
        assert url is not None
        snapshot = raw.execute("SELECT pg_export_snapshot()").fetchone()[0]
        with ThreadPoolExecutor(len(ranges) - 1, thread_name_prefix="numeric-columns") as pool:
            others = [pool.submit(_numeric_range_in, url, snapshot, fields, source, params, r) for r in ranges[1:]]
            parts = [_numeric_range(raw, fields, source, params, *ranges[0])] + [f.result() for f in others]
    columns = {name: np.concatenate([p[name] for p in parts]) for name in fields}
    keys = columns[key]
    if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        order = np.argsort(keys, kind="stable")
        columns = {name: values[order] for name, values in columns.items()}
    return Columns(columns)


def _numeric_range_in(
    url: str, snapshot: str, fields: dict[str, tuple[str, Any]], source: str, params: dict[str, Any],
    bounds: tuple[int, int],
) -> dict[str, NDArray[Any]]:  # fmt: skip
    """:func:`_numeric_range` through a connection of its own, inside ``snapshot``."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        try:
            return _numeric_range(conn, fields, source, params, *bounds)
        finally:
            conn.rollback()


def _numeric_range(
    raw: Any, fields: dict[str, tuple[str, Any]], source: str, params: dict[str, Any], after: int, last: int
) -> dict[str, NDArray[Any]]:
    """The columns of the rows with ``after`` < key ≤ ``last`` (see :func:`numeric_columns`), read in key
    windows of :data:`NUMERIC_PAGE_ROWS` keys from the smallest key up. A window is a plain range condition
    (no ``ORDER BY``, no ``LIMIT``), so PostgreSQL reads it through a bitmap of the key index, heap pages in
    physical order, whatever order the table is in (clustered by footprint, for one); the rows of a window
    are at most the window's keys."""
    key_expr = next(iter(fields.values()))[0]
    inner = ", ".join(f"{expr} AS {name}" for name, (expr, _) in fields.items())
    send = {name: _SEND[np.dtype(kind)][0] for name, (_, kind) in fields.items()}
    packed = ", ".join(f"string_agg({fn}({name}), ''::bytea)" for name, fn in send.items())
    window = f"{key_expr} > %(after)s AND {key_expr} <= %(upto)s"
    sql = f"SELECT count(*), {packed} FROM (SELECT {inner} {source} AND {window}) q"
    parts: dict[str, list[NDArray[Any]]] = {name: [] for name in fields}
    with raw.cursor(binary=True) as cur:
        span = f"{key_expr} > %(after)s AND {key_expr} <= %(last)s"
        limits = params | {"after": after, "last": last}
        cur.execute(f"SELECT min({key_expr}), max({key_expr}) {source} AND {span}", limits)
        first, final = cur.fetchone()
        if first is not None:
            after, last = int(first) - 1, int(final)
        while first is not None and after < last:
            upto = min(after + NUMERIC_PAGE_ROWS, last)
            cur.execute(sql, {**params, "after": after, "upto": upto})
            row = cur.fetchone()
            count = int(row[0])
            for (name, (_, kind)), data in zip(fields.items(), row[1:], strict=True):
                values = np.frombuffer(data or b"", dtype=_SEND[np.dtype(kind)][1]).astype(kind)
                if len(values) != count:
                    raise ValueError(f"column {name}: {len(values)} values for {count} rows (a NULL?)")
                parts[name].append(values)
            after = upto
    return {
        name: np.concatenate(chunks) if chunks else np.zeros(0, kind)
        for (name, chunks), (_, kind) in zip(parts.items(), fields.values(), strict=True)
    }


def read_building_points(conn: Connection, bbox: BBox | None = None, ids: NDArray[np.int64] | None = None) -> Columns:
    """Live buildings, light (no geometry, no attributes): ``id``, the partition point ``cx``, ``cy`` (the
    centre of the bounding box, cheap: PostGIS caches boxes) and ``importance`` (box area in square degrees
    × height, at least 0.1 m: what earns a building a place in a parent tile). 32 bytes a building (read by
    :func:`numeric_columns`), so that ten million fit in a few hundred MB. ``ids``: only these."""
    where, params = bbox_sql("b.footprint", bbox)
    if ids is not None:
        where += " AND b.id = ANY(%(ids)s::int8[])"
        params["ids"] = id_array(ids)
    fields = {
        "id": ("b.id", np.int64),
        "cx": ("(ST_XMin(x.b) + ST_XMax(x.b)) / 2", np.float64),
        "cy": ("(ST_YMin(x.b) + ST_YMax(x.b)) / 2", np.float64),
    }
    area = "(ST_XMax(x.b) - ST_XMin(x.b)) * (ST_YMax(x.b) - ST_YMin(x.b))"
    fields["importance"] = (f"{area} * greatest(b.height, 0.1)", np.float64)
    source = f"FROM building b CROSS JOIN LATERAL (SELECT b.footprint::box2d AS b) x WHERE b.valid_to IS NULL{where}"
    url = connect_url(conn.engine.url.render_as_string(hide_password=False))
    return numeric_columns(_driver(conn), fields, source, params, url=url)


CellCounts = tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]
"""Cell columns, rows and the rows counted in each."""


def count_building_cells(conn: Connection, level: int) -> CellCounts:
    """Live buildings per grid cell at ``level`` (:mod:`tiles.partition`'s cells of the point
    :func:`read_building_points` reads: the same float operations, so the same cell as in NumPy)."""
    from tiles.partition import MAX_LEVEL, cell_size

    top = {"x": (2 << MAX_LEVEL) - 1, "y": (1 << MAX_LEVEL) - 1}
    cell = {
        axis: f"(least(greatest(floor(({expr} + %(o{axis})s::float8) / %(s)s::float8), 0), {top[axis]})::int8"
        f" >> {MAX_LEVEL - level})"
        for axis, expr in (("x", "(ST_XMin(x.b) + ST_XMax(x.b)) / 2"), ("y", "(ST_YMin(x.b) + ST_YMax(x.b)) / 2"))
    }
    sql = (
        f"SELECT {cell['x']}, {cell['y']}, count(*) FROM building b "
        "CROSS JOIN LATERAL (SELECT b.footprint::box2d AS b) x WHERE b.valid_to IS NULL GROUP BY 1, 2"
    )
    with _driver(conn).cursor() as cur:
        cur.execute(sql, {"ox": 180.0, "oy": 90.0, "s": cell_size(MAX_LEVEL)})
        rows = cur.fetchall()
    out = np.array(rows, dtype=np.int64).reshape(-1, 3)
    return out[:, 0], out[:, 1], out[:, 2]


def id_array(ids: NDArray[np.int64]) -> str:
    """An ``int8[]`` literal of ``ids`` (one string: far cheaper for psycopg than a list of Python ints)."""
    return "{" + ",".join(map(str, np.asarray(ids, np.int64).tolist())) + "}"


_BUILDING_ORDER = " ORDER BY array_position(%(uses)s::text[], b.use) NULLS FIRST, b.id"
"""Rows in vocabulary order of their use, then by id: the order the renderer draws them in (a tile's
colours change a few times instead of at most buildings), sorted by the server in one go."""


def fetch_buildings(raw: Any, ids: NDArray[np.int64]) -> Columns:
    """The rows of buildings ``ids`` through a psycopg connection, in use order then id order (see
    :data:`_BUILDING_ORDER`): id, footprint WKB (ISO, no SRID), base height, height, storeys, year built, use,
    name, safety class, CIM level (missing numbers -1, missing strings empty). No bounds: the renderer has the
    coordinates (cheaper than four more columns)."""
    sql = f"SELECT {_BUILDING_COLUMNS} WHERE b.id = ANY(%(ids)s::int8[]){_BUILDING_ORDER}"
    return _fetch(raw, sql, {"ids": id_array(ids), "uses": _uses()}, _BUILDING_NAMES, _BUILDING_KINDS)


def _uses() -> list[str]:
    from cim.vocabulary import BUILDING_USES

    return list(BUILDING_USES)


def fetch_buildings_in_cell(raw: Any, cell: BBox, ids: NDArray[np.int64]) -> Columns:
    """:func:`fetch_buildings` of buildings ``ids`` (sorted) that all lie in ``cell`` (their partition
    points do, so their footprints meet it), found through the footprint's spatial index: PostgreSQL reads
    the cell's heap pages in physical order (a bitmap scan) instead of probing the key index once per id,
    about 40 % less server time when ids are scattered over the table. In the order of
    :data:`_BUILDING_ORDER`, or not quite when some were read by id. Rows of the cell that are not in
    ``ids`` (a neighbour's buildings reaching over the edge, a building drawn by its BIM elements) are
    dropped here; an id the cell did not yield (a point on the cell's edge, to rounding) is read by id."""
    where, params = bbox_sql("b.footprint", cell)
    sql = f"SELECT {_BUILDING_COLUMNS} WHERE b.valid_to IS NULL{where}{_BUILDING_ORDER}"
    rows = _fetch(raw, sql, params | {"uses": _uses()}, _BUILDING_NAMES, _BUILDING_KINDS)
    found = rows["id"]
    at = np.clip(np.searchsorted(ids, found), 0, max(len(ids) - 1, 0))
    mine = ids[at] == found if len(ids) else np.zeros(len(found), bool)
    if not bool(mine.all()):
        rows = rows.take(np.flatnonzero(mine))
    if len(rows) < len(ids):
        missing = np.setdiff1d(ids, rows["id"])
        rows = rows.concat(fetch_buildings(raw, missing))  # out of use order: the renderer sorts them
    return rows


def read_elements(conn: Connection, bbox: BBox | None = None) -> Columns:
    """Live IFC elements that have a mesh: attributes, building, colour and the TIN WKB (EPSG:4479)."""
    where, params = bbox_sql("coalesce(e.extent, e.location)", bbox)
    sql = (
        "SELECT e.id, coalesce(e.building_id, -1), e.global_id, e.ifc_class, coalesce(e.name, ''), "
        "coalesce(e.storey, ''), e.color, ST_AsBinary(e.mesh) "
        f"FROM element e WHERE e.valid_to IS NULL AND e.mesh IS NOT NULL{where} ORDER BY e.id"
    )
    names = ["id", "building_id", "global_id", "ifc_class", "name", "storey", "color", "wkb"]
    return _fetch(_driver(conn), sql, params, names, {"id": np.int64, "building_id": np.int64})


def read_facilities(conn: Connection, bbox: BBox | None = None, *, lines: bool | None = None) -> Columns:
    """Live municipal facilities: kind, name, geometry WKB (EPSG:4490), pipe sizes and a representative point.

    ``lines``: True → only the line facilities that are not pipes (roads, greenways…), False → all others,
    None → every facility. Also reads ``road_class``.
    """
    from cim.vocabulary import PIPE_KINDS

    where, params = bbox_sql("f.geom", bbox)
    if lines is not None:
        where += f" AND {'' if lines else 'NOT '}(ST_Dimension(f.geom) = 1 AND f.kind <> ALL(%(pipes)s))"
        params["pipes"] = list(PIPE_KINDS)
    sql = (
        "SELECT f.id, f.kind, coalesce(f.name, ''), ST_AsBinary(f.geom), coalesce(f.diameter_mm, 'NaN'), "
        "coalesce(f.depth_m, 'NaN'), coalesce(f.invert_start_m, 'NaN'), coalesce(f.invert_end_m, 'NaN'), "
        "coalesce(f.width_m, 'NaN'), coalesce(f.road_class, ''), ST_X(p.p), ST_Y(p.p) "
        "FROM facility f CROSS JOIN LATERAL (SELECT ST_PointOnSurface(f.geom) AS p) p "
        f"WHERE f.valid_to IS NULL AND NOT ST_IsEmpty(f.geom){where} ORDER BY f.id"
    )
    names = ["id", "kind", "name", "wkb", "diameter_mm", "depth_m", "invert_start", "invert_end", "width_m"]
    names += ["road_class", "px", "py"]
    f8 = np.float64
    kinds = {
        "id": np.int64,
        "diameter_mm": f8,
        "depth_m": f8,
        "invert_start": f8,
        "invert_end": f8,
        "width_m": f8,
        "px": f8,
        "py": f8,
    }
    return _fetch(_driver(conn), sql, params, names, kinds)


@dataclass(frozen=True)
class BuildingSource:
    """Where a worker reads its buildings: a libpq URL and the snapshot exported by the build's transaction
    (so every worker sees exactly the same database state as the partition did)."""

    url: str
    snapshot: str


_CONNECTIONS: dict[tuple[int, str], Any] = {}
"""One connection per (process, database) reused across tiles; keyed by pid so forked workers never share
their parent's socket."""


def close_connections() -> None:
    """Close the connections this process opened to read buildings."""
    pid = os.getpid()
    for key in [k for k in _CONNECTIONS if k[0] == pid]:
        _CONNECTIONS.pop(key).close()


def fetch_buildings_in_snapshot(source: BuildingSource, ids: NDArray[np.int64], cell: BBox | None = None) -> Columns:
    """:func:`fetch_buildings` (or, given the ``cell`` they lie in, :func:`fetch_buildings_in_cell`) through
    this process's connection, inside the build's snapshot."""
    import psycopg
    from psycopg import sql

    key = (os.getpid(), source.url)
    conn = _CONNECTIONS.get(key)
    if conn is None or conn.closed:
        conn = psycopg.connect(source.url)
        _CONNECTIONS[key] = conn
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(source.snapshot)))
        return fetch_buildings(conn, ids) if cell is None else fetch_buildings_in_cell(conn, cell, ids)
    finally:
        conn.rollback()
