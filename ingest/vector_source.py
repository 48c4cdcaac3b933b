"""Opening vector sources: format options, layer choice, DBF encodings, the source CRS and its checks.

Formats (through GDAL/pyogrio): GeoPackage, Shapefile (DBF in UTF-8, GBK or GB18030, read from ``.cpg``,
the DBF language-driver byte, or detected), GeoJSON (also mixed geometry types), FlatGeobuf, and CSV with a
WKT column (``WKT``, ``geometry``, ``geom``) or ``x``/``y`` / ``lon``/``lat`` columns.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio
from numpy.typing import NDArray

from cim import crs as cimcrs
from cim.errors import CrsError, IngestError

CSV_OPEN_OPTIONS = {
    "GEOM_POSSIBLE_NAMES": "WKT,wkt,geometry,geom,the_geom,GEOMETRY",
    "X_POSSIBLE_NAMES": "x,lon,lng,longitude,经度,X",
    "Y_POSSIBLE_NAMES": "y,lat,latitude,纬度,Y",
    "KEEP_GEOM_COLUMNS": "NO",
}

CHINA_EXTENT = (73.0, 3.0, 136.0, 54.0)
"""A sanity box (west, south, east, north, degrees) for sources whose CRS has no recorded area of use."""

# DBF language-driver ids (byte 29 of the header) that mean the Chinese GBK code page.
_DBF_LDID_GBK = {0x4D, 0x7A}


@dataclass
class IngestConfig:
    """Options of an ingest config file (TOML).

    ``[local_crs]``: a city-local system (see :func:`cim.crs.load_local_crs`), used when no ``--crs`` is given.
    ``[mapping]``: ``TARGET = "SOURCE"`` field mappings. ``[buildings]``: ``storey_height`` (m, default 3),
    ``default_height`` (m, default 9), ``default_storeys``. ``[uses]``: extra source-use values → use keys.
    """

    local_crs: dict[str, Any] | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    storey_height: float = 3.0
    default_height: float = 9.0
    uses: dict[str, str] = field(default_factory=dict)


def load_config(path: Path | None) -> IngestConfig:
    """Read an ingest config file (or the defaults when ``path`` is ``None``)."""
    if path is None:
        return IngestConfig()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise IngestError(f"cannot read ingest config {path}: {exc}") from exc
    buildings = data.get("buildings", {})
    try:
        return IngestConfig(
            local_crs=data.get("local_crs"),
            mapping={str(k): str(v) for k, v in data.get("mapping", {}).items()},
            storey_height=float(buildings.get("storey_height", 3.0)),
            default_height=float(buildings.get("default_height", 9.0)),
            uses={str(k): str(v) for k, v in data.get("uses", {}).items()},
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise IngestError(f"ingest config {path}: {exc}; see the README section on vector ingest") from exc


def open_options(path: Path) -> dict[str, str]:
    """GDAL open options for a source (CSV needs to be told where the geometry is)."""
    return dict(CSV_OPEN_OPTIONS) if path.suffix.lower() in {".csv", ".tsv"} else {}


def dbf_encoding(path: Path) -> str | None:
    """The code page of a Shapefile's DBF when GDAL would not know it, else ``None`` (GDAL decides).

    A ``.cpg`` file or a DBF language-driver byte GDAL understands is left to GDAL. Otherwise the records
    are tried as UTF-8, then GB18030 (a superset of GBK and GB2312).
    """
    if path.suffix.lower() != ".shp":
        return None
    for suffix in (".cpg", ".CPG"):
        if path.with_suffix(suffix).exists():
            return None
    dbf = next((p for p in (path.with_suffix(".dbf"), path.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return None
    with open(dbf, "rb") as handle:
        head = handle.read(32)
        if len(head) < 32:
            return None
        if head[29] in _DBF_LDID_GBK:
            return "GB18030"
        header_len = int.from_bytes(head[8:10], "little")
        handle.seek(header_len)
        body = handle.read(1 << 20)
        # Field names (in the header) may be Chinese too.
        handle.seek(32)
        names = handle.read(max(header_len - 32, 0))
    sample = names + body
    if all(b < 0x80 for b in sample):
        return None
    try:
        sample.decode("utf-8")
        return "UTF-8"
    except UnicodeDecodeError as exc:
        if exc.start > len(sample) - 4 and exc.reason == "unexpected end of data":
            return "UTF-8"
    try:
        sample[: len(sample) - 1].decode("gb18030")
        return "GB18030"
    except UnicodeDecodeError:
        return None


def choose_layer(path: Path, source_layer: str | None, layer: str, kind: str | None) -> str | None:
    """The layer of a multi-layer source to read: the given one, the only one, or one named like the target."""
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # GDAL raises its own error classes
        raise IngestError(
            f"cannot open {path}: {exc}; is it a GeoPackage, Shapefile, GeoJSON, FlatGeobuf or CSV?"
        ) from exc
    if source_layer is not None:
        if source_layer not in layers:
            raise IngestError(f"{path.name} has no layer {source_layer!r}; its layers: {', '.join(layers)}")
        return source_layer
    if len(layers) <= 1:
        return layers[0] if layers else None
    for candidate in (kind, layer):
        if candidate and candidate in layers:
            return candidate
    raise IngestError(f"{path.name} has several layers ({', '.join(layers)}); choose one with --source-layer")


def source_crs(file_crs: str | None, crs: str | None, config: IngestConfig, path: Path) -> cimcrs.SourceCrs:
    """The CRS of the source: ``--crs`` wins, then the config's ``[local_crs]``, then the file's own CRS."""
    if crs is not None:
        return cimcrs.parse_crs(crs)
    if config.local_crs is not None:
        return cimcrs.local_crs_from_mapping(config.local_crs)
    if file_crs:
        return cimcrs.parse_crs(file_crs)
    hint = " (a Shapefile needs its .prj)" if path.suffix.lower() == ".shp" else ""
    raise CrsError(
        f"{path.name} has no coordinate reference system{hint} and none was given: pass --crs "
        "(e.g. --crs EPSG:4547 for CGCS2000 / 3-degree Gauss–Krüger CM 114°E) or a city-local system with --config"
    )


def with_zone_prefix(source: cimcrs.SourceCrs, x: NDArray[np.float64]) -> cimcrs.SourceCrs:
    """Switch a CGCS2000 GK (central-meridian) CRS to its zone-prefixed twin when eastings carry the zone.

    Eastings such as 38 512 345 m mean zone 38 (EPSG:4526) even when the file says EPSG:4547.
    """
    epsg = source.epsg
    finite = x[np.isfinite(x)]
    if epsg is None or not finite.size or not (cimcrs.GK_CM_EPSG_FIRST <= epsg <= cimcrs.GK_CM_EPSG_FIRST + 20):
        return source
    median = float(np.median(finite))
    if median < 1_000_000:
        return source
    zone = cimcrs.zone_from_prefixed_easting(median)
    if zone is None:
        return source  # the area-of-use check then refuses it (e.g. swapped axes)
    return cimcrs.parse_crs(cimcrs.gk_zone_prefixed_epsg(zone))


def check_coordinates(lon: NDArray[np.float64], lat: NDArray[np.float64], source: cimcrs.SourceCrs) -> None:
    """Refuse transformed coordinates outside the source CRS's area of use (or China, when it has none)."""
    cimcrs.check_within_area_of_use(lon, lat, source)
    if source.area_of_use() is None and lon.size:
        west, south, east, north = CHINA_EXTENT
        outside = (lon < west) | (lon > east) | (lat < south) | (lat > north)
        if outside.any():
            i = int(np.argmax(outside))
            raise CrsError(
                f"{int(outside.sum())} coordinates transformed with {source.name} fall outside China "
                f"(e.g. {lon[i]:.5f}, {lat[i]:.5f}): check the local CRS parameters or --crs"
            )


def with_field_names(reader: pa.RecordBatchReader, fields: list[str], names: list[str]) -> pa.RecordBatchReader:
    """The Arrow stream of a source with its attribute columns renamed from ``fields`` to ``names``.

    GDAL's stream holds the feature id first (when asked for), the attribute fields in order and the WKB
    geometry (tagged ``geoarrow.wkb``); a property that shares the feature id's or the geometry's name
    (an OpenStreetMap ``id``) appears twice, so columns are matched by position, never by name.
    """
    if fields == names:
        return reader
    schema = reader.schema
    positions = [i for i, f in enumerate(schema) if (f.metadata or {}).get(b"ARROW:extension:name") != b"geoarrow.wkb"]
    positions = positions[len(positions) - len(fields) :]  # the feature id, if any, comes first
    if len(positions) != len(fields) or [schema.names[i] for i in positions] != fields:
        raise IngestError(f"the source's columns {schema.names} do not match its fields {fields}")
    renamed = list(schema.names)
    for i, name in zip(positions, names, strict=True):
        renamed[i] = name
    target = pa.schema([f.with_name(n) for f, n in zip(schema, renamed, strict=True)], metadata=schema.metadata)
    batches = (pa.RecordBatch.from_arrays(b.columns, schema=target) for b in reader)
    return pa.RecordBatchReader.from_batches(target, batches)
