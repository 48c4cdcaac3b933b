"""Reading live features from the database as column arrays (binary WKB, no ORM objects).

Centroids and bounds are computed by PostGIS (in its own process) so the builder never parses geometry it
does not render. All coordinates are CGCS2000 (EPSG:4490) lon/lat degrees; heights are normal heights (m).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection

from cim.crs import CGCS2000

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
    "coalesce(b.safety_class, ''), coalesce(b.cim_level, -1)::int4, "
    "ST_XMin(x.b), ST_YMin(x.b), ST_XMax(x.b), ST_YMax(x.b) "
    "FROM building b CROSS JOIN LATERAL (SELECT b.footprint::box2d AS b) x "
)
_BUILDING_NAMES = ["id", "wkb", "base", "height", "storeys", "year_built", "use", "name", "safety_class", "cim_level"]
_BUILDING_NAMES += ["xmin", "ymin", "xmax", "ymax"]
_BUILDING_KINDS: dict[str, Any] = {"id": np.int64, "base": np.float64, "height": np.float64, "storeys": np.int32}
_BUILDING_KINDS.update({"year_built": np.int32, "cim_level": np.int32})
_BUILDING_KINDS.update({k: np.float64 for k in ("xmin", "ymin", "xmax", "ymax")})


def _with_points(cols: Columns) -> Columns:
    cols.data["cx"] = (cols["xmin"] + cols["xmax"]) / 2
    cols.data["cy"] = (cols["ymin"] + cols["ymax"]) / 2
    cols.data["area"] = (cols["xmax"] - cols["xmin"]) * (cols["ymax"] - cols["ymin"])
    return cols


def read_buildings(conn: Connection, bbox: BBox | None = None) -> Columns:
    """Live buildings: id, footprint WKB, heights, attributes, bounds, partition point and a size measure.

    The partition point (``cx``, ``cy``) is the centre of the bounding box (cheap: PostGIS caches boxes) and
    the size measure (``area``) the box area in square degrees; placing a building in a tile needs no more.
    """
    where, params = bbox_sql("b.footprint", bbox)
    sql = f"SELECT {_BUILDING_COLUMNS} WHERE b.valid_to IS NULL{where} ORDER BY b.id"
    return _with_points(_fetch(_driver(conn), sql, params, _BUILDING_NAMES, _BUILDING_KINDS))


NUMERIC_PAGE_ROWS = 1_000_000
"""Rows per page of :func:`numeric_columns`."""
_SEND = {np.dtype(np.int64): ("int8send", ">i8"), np.dtype(np.float64): ("float8send", ">f8")}


def numeric_columns(raw: Any, fields: dict[str, tuple[str, Any]], source: str, params: dict[str, Any]) -> Columns:
    """Numeric columns of many rows without a Python object per value: ``fields`` = name → (SQL expression,
    int64 | float64), the first one an ``id`` key that orders the rows (unique, not null); ``source`` the
    ``FROM … WHERE …`` clause (it must end in a WHERE condition).

    PostgreSQL packs each column of a page of :data:`NUMERIC_PAGE_ROWS` rows (keyset pages by id) into one
    bytea of big-endian values (``int8send`` / ``float8send``, ``string_agg``), which NumPy reads as is:
    memory is the columns plus one page. A NULL value is an error (the page would come back short)."""
    (key, (key_expr, _)), *_ = fields.items()
    inner = ", ".join(f"{expr} AS {name}" for name, (expr, _) in fields.items())
    send = {name: _SEND[np.dtype(kind)][0] for name, (_, kind) in fields.items()}
    packed = ", ".join(f"string_agg({fn}({name}), ''::bytea ORDER BY {key})" for name, fn in send.items())
    sql = (
        f"SELECT count(*), max({key}), {packed} FROM (SELECT {inner} {source} AND {key_expr} > %(after)s "
        f"ORDER BY {key_expr} LIMIT {NUMERIC_PAGE_ROWS}) q"
    )
    parts: dict[str, list[NDArray[Any]]] = {name: [] for name in fields}
    after = -(2**63)
    with raw.cursor(binary=True) as cur:
        while True:
            cur.execute(sql, {**params, "after": after})
            row = cur.fetchone()
            count = int(row[0])
            for (name, (_, kind)), data in zip(fields.items(), row[2:], strict=True):
                values = np.frombuffer(data or b"", dtype=_SEND[np.dtype(kind)][1]).astype(kind)
                if len(values) != count:
                    raise ValueError(f"column {name}: {len(values)} values for {count} rows (a NULL?)")
                parts[name].append(values)
            if count < NUMERIC_PAGE_ROWS:
                break
            after = int(row[1])
    return Columns({name: np.concatenate(chunks) for name, chunks in parts.items()})


def read_building_points(conn: Connection, bbox: BBox | None = None) -> Columns:
    """Live buildings, light (no geometry, no attributes): ``id``, the partition point ``cx``, ``cy`` (the
    centre of the bounding box, cheap: PostGIS caches boxes) and ``importance`` (box area in square degrees
    × height, at least 0.1 m: what earns a building a place in a parent tile). 32 bytes a building (read by
    :func:`numeric_columns`), so that ten million fit in a few hundred MB."""
    where, params = bbox_sql("b.footprint", bbox)
    fields = {
        "id": ("b.id", np.int64),
        "cx": ("(ST_XMin(x.b) + ST_XMax(x.b)) / 2", np.float64),
        "cy": ("(ST_YMin(x.b) + ST_YMax(x.b)) / 2", np.float64),
    }
    area = "(ST_XMax(x.b) - ST_XMin(x.b)) * (ST_YMax(x.b) - ST_YMin(x.b))"
    fields["importance"] = (f"{area} * greatest(b.height, 0.1)", np.float64)
    source = f"FROM building b CROSS JOIN LATERAL (SELECT b.footprint::box2d AS b) x WHERE b.valid_to IS NULL{where}"
    return numeric_columns(_driver(conn), fields, source, params)


def id_array(ids: NDArray[np.int64]) -> str:
    """An ``int8[]`` literal of ``ids`` (one string: far cheaper for psycopg than a list of Python ints)."""
    return "{" + ",".join(map(str, np.asarray(ids, np.int64).tolist())) + "}"


def fetch_buildings(raw: Any, ids: NDArray[np.int64]) -> Columns:
    """The full rows (as :func:`read_buildings`) of buildings ``ids`` through a psycopg connection."""
    sql = f"SELECT {_BUILDING_COLUMNS} WHERE b.id = ANY(%(ids)s::int8[]) ORDER BY b.id"
    return _with_points(_fetch(raw, sql, {"ids": id_array(ids)}, _BUILDING_NAMES, _BUILDING_KINDS))


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


def fetch_buildings_in_snapshot(source: BuildingSource, ids: NDArray[np.int64]) -> Columns:
    """:func:`fetch_buildings` through this process's connection, inside the build's snapshot."""
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
        return fetch_buildings(conn, ids)
    finally:
        conn.rollback()
