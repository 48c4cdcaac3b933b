"""The unified CRS: every coordinate transform of the platform goes through this module.

Storage frames (the README's "Coordinate reference systems" table, `docs/architecture.md`):

* 2D / 2.5D geometry: EPSG:4490, CGCS2000 geographic, longitude and latitude in decimal degrees
  (always x = longitude, y = latitude in code), Z in metres of normal height (1985 National Height Datum).
* 3D meshes: EPSG:4479, CGCS2000 geocentric, metres. This is also the frame of 3D Tiles; CGCS2000 and
  WGS 84 agree to a few centimetres, which the tile builder relies on.
* Metric 2D analysis: the CGCS2000 3-degree Gauss–Krüger zone of the feature, EPSG:4534–4554.

No other module builds a :class:`pyproj.Transformer`; they call the functions here. Transformers are cached
per thread (pyproj transformers must not be shared between threads).
"""

from __future__ import annotations

import math
import re
import threading
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as PyprojCRSError
from pyproj.exceptions import ProjError
from shapely.geometry.base import BaseGeometry

from cim.errors import CrsError

CGCS2000 = 4490
"""EPSG code of CGCS2000 geographic 2D (lon/lat degrees): the storage frame of 2D geometry."""
CGCS2000_3D = 4480
"""EPSG code of CGCS2000 geographic 3D (lon/lat degrees, ellipsoidal height metres)."""
CGCS2000_GEOCENTRIC = 4479
"""EPSG code of CGCS2000 geocentric (X/Y/Z metres): the storage frame of 3D meshes."""
WGS84 = 4326
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

GK_CM_EPSG_FIRST = 4534
"""CGCS2000 / 3-degree Gauss-Kruger CM 75E; the series runs to 4554 (CM 135E)."""
GK_ZONE_EPSG_FIRST = 4513
"""CGCS2000 / 3-degree Gauss-Kruger zone 25 (zone number prefixed to the easting); runs to 4533 (zone 45)."""

# CGCS2000 ellipsoid; differs from GRS 80 only in the 12th digit of the flattening.
CGCS2000_ELLIPSOID = "+a=6378137 +rf=298.257222101"
_ACCEPTED_FORMS = (
    "'EPSG:4547', '4547', an OGC URI (http://www.opengis.net/def/crs/EPSG/0/4547), 'CRS84', "
    "WKT (e.g. the content of a .prj file), a PROJ string ('+proj=tmerc …'), "
    "or a city-local system file (.toml) with a [local_crs] table"
)


@dataclass(frozen=True)
class SourceCrs:
    """A coordinate reference system of source data.

    Either a regular CRS (``crs`` set) or a city-local system given as a PROJ pipeline that maps source
    x/y (metres of the local grid) to CGCS2000 longitude/latitude in degrees (``pipeline_to_cgcs2000`` set).
    """

    name: str
    crs: CRS | None = None
    pipeline_to_cgcs2000: str | None = None

    @property
    def key(self) -> str:
        """A string that identifies this CRS for caching and for the ``dataset.crs_in`` column."""
        if self.pipeline_to_cgcs2000 is not None:
            return f"pipeline:{self.pipeline_to_cgcs2000}"
        assert self.crs is not None
        epsg = self.epsg
        return f"EPSG:{epsg}" if epsg is not None else self.crs.to_wkt()

    @property
    def epsg(self) -> int | None:
        """The EPSG code when the CRS is a registered one, else ``None``."""
        if self.crs is None:
            return None
        code = self.crs.to_epsg(min_confidence=90)
        return int(code) if code is not None else None

    @property
    def is_geographic(self) -> bool:
        """True when source coordinates are longitude/latitude degrees."""
        return self.crs is not None and self.crs.is_geographic

    def area_of_use(self) -> tuple[float, float, float, float] | None:
        """The CRS's area of use as (west, south, east, north) in degrees, when known."""
        if self.crs is None or self.crs.area_of_use is None:
            return None
        a = self.crs.area_of_use
        return (a.west, a.south, a.east, a.north)


def parse_crs(value: str | int | Path | Mapping[str, Any] | SourceCrs | CRS) -> SourceCrs:
    """Parse what a user typed into a :class:`SourceCrs`.

    Accepts ``EPSG:4547``, ``4547``, OGC CRS URIs, ``CRS84``, WKT (with or without a zone number in the
    false easting, as .prj files of CGCS2000 Gauss–Krüger zones have), PROJ strings, the path of a ``.prj``
    or of a city-local ``.toml`` file, or an already parsed local-system mapping.

    >>> parse_crs("EPSG:4547").epsg
    4547
    >>> parse_crs("4490").is_geographic
    True
    """
    if isinstance(value, SourceCrs):
        return value
    if isinstance(value, CRS):
        return SourceCrs(name=value.name, crs=value)
    if isinstance(value, Mapping):
        return local_crs_from_mapping(value)
    if isinstance(value, int):
        return _from_pyproj(f"EPSG:{value}", str(value))
    if isinstance(value, Path):
        return _from_file(value)
    text = value.strip()
    if not text:
        raise CrsError(f"empty CRS given; accepted forms: {_ACCEPTED_FORMS}")
    if re.fullmatch(r"\d{4,6}", text):
        return _from_pyproj(f"EPSG:{text}", text)
    if text.upper() in {"CRS84", "OGC:CRS84", CRS84_URI.upper()}:
        return _from_pyproj("OGC:CRS84", text)
    uri = re.fullmatch(r"https?://www\.opengis\.net/def/crs/EPSG/0/(\d+)", text)
    if uri:
        return _from_pyproj(f"EPSG:{uri.group(1)}", text)
    if text.lower().endswith((".toml", ".prj")) and "\n" not in text and Path(text).exists():
        return _from_file(Path(text))
    return _from_pyproj(text, text)


def _from_pyproj(definition: str, given: str) -> SourceCrs:
    try:
        crs = CRS.from_user_input(definition)
    except (PyprojCRSError, ProjError) as exc:
        shown = given if len(given) <= 80 else given[:77] + "…"
        raise CrsError(f"unknown CRS {shown!r} ({exc}); accepted forms: {_ACCEPTED_FORMS}") from exc
    return SourceCrs(name=crs.name, crs=crs)


def _from_file(path: Path) -> SourceCrs:
    if not path.exists():
        raise CrsError(f"CRS file {path} does not exist")
    if path.suffix.lower() == ".toml":
        return load_local_crs(path)
    return _from_pyproj(path.read_text(encoding="utf-8", errors="replace"), str(path))


def load_local_crs(path: Path) -> SourceCrs:
    """Read a city-local coordinate system from a TOML file with a ``[local_crs]`` table.

    Two kinds are understood (all lengths in metres, angles in degrees unless named otherwise):

    ``type = "transverse_mercator"``: a local Gauss–Krüger grid on the CGCS2000 ellipsoid (or on
    ``ellipsoid = "krass"`` / ``"iag75"`` with a 7-parameter ``towgs84``-style shift to CGCS2000):
    ``central_meridian``, ``latitude_of_origin`` (0), ``scale`` (1), ``false_easting`` (500000),
    ``false_northing`` (0), optional ``helmert7 = [dx, dy, dz, rx, ry, rz, ds_ppm]`` (rotations in
    arc-seconds, position-vector convention) from that ellipsoid's geocentric frame to CGCS2000.

    ``type = "helmert4"``: a local plane grid related to a CGCS2000 Gauss–Krüger grid (``base``, e.g.
    ``"EPSG:4547"``) by a 4-parameter similarity: ``dx``, ``dy`` (metres), ``rotation_arcsec``,
    ``scale_ppm``; ``x_base = dx + (1 + s)·(x·cos θ − y·sin θ)``, ``y_base = dy + (1 + s)·(x·sin θ + y·cos θ)``.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CrsError(f"cannot read local CRS file {path}: {exc}") from exc
    table = data.get("local_crs")
    if not isinstance(table, Mapping):
        raise CrsError(f"{path} has no [local_crs] table; see 'Coordinate reference systems' in the README")
    return local_crs_from_mapping(table)


_ELLIPSOIDS = {
    "cgcs2000": CGCS2000_ELLIPSOID,
    "grs80": "+ellps=GRS80",
    "krass": "+ellps=krass",  # Beijing 1954
    "iag75": "+a=6378140 +rf=298.257",  # Xi'an 1980
    "wgs84": "+ellps=WGS84",
}


def local_crs_from_mapping(table: Mapping[str, Any]) -> SourceCrs:
    """Build a :class:`SourceCrs` from a parsed ``[local_crs]`` table (see :func:`load_local_crs`)."""
    kind = str(table.get("type", "")).lower()
    name = str(table.get("name", "local grid"))
    try:
        if kind == "transverse_mercator":
            ellps_name = str(table.get("ellipsoid", "cgcs2000")).lower()
            if ellps_name not in _ELLIPSOIDS:
                raise CrsError(f"unknown ellipsoid {ellps_name!r}; use one of {sorted(_ELLIPSOIDS)}")
            ellps = _ELLIPSOIDS[ellps_name]
            tmerc = (
                f"+proj=tmerc +lat_0={float(table.get('latitude_of_origin', 0.0))} "
                f"+lon_0={float(table['central_meridian'])} +k={float(table.get('scale', 1.0))} "
                f"+x_0={float(table.get('false_easting', 500000.0))} "
                f"+y_0={float(table.get('false_northing', 0.0))} {ellps}"
            )
            steps = [f"+step +inv {tmerc}"]
            helmert7 = table.get("helmert7")
            if helmert7 is not None:
                dx, dy, dz, rx, ry, rz, ds = (float(v) for v in helmert7)
                steps += [
                    f"+step +proj=cart {ellps}",
                    f"+step +proj=helmert +x={dx} +y={dy} +z={dz} +rx={rx} +ry={ry} +rz={rz} +s={ds} "
                    "+convention=position_vector",
                    f"+step +inv +proj=cart {CGCS2000_ELLIPSOID}",
                ]
            elif ellps_name not in {"cgcs2000", "grs80"}:
                raise CrsError(f"local grid on ellipsoid {ellps_name!r} needs helmert7 parameters to CGCS2000")
            steps.append("+step +proj=unitconvert +xy_in=rad +xy_out=deg")
            return SourceCrs(name=name, pipeline_to_cgcs2000="+proj=pipeline " + " ".join(steps))
        if kind == "helmert4":
            base = parse_crs(str(table["base"]))
            if base.crs is None or not base.crs.is_projected:
                raise CrsError("helmert4 'base' must be a projected CGCS2000 grid such as EPSG:4547")
            with warnings.catch_warnings():
                # A CGCS2000 GK grid survives the PROJ-string round trip intact; the generic warning is noise.
                warnings.simplefilter("ignore", UserWarning)
                base_proj = base.crs.to_proj4().replace("+type=crs", "").strip()
            theta = float(table.get("rotation_arcsec", 0.0))
            scale_ppm = float(table.get("scale_ppm", 0.0))
            pipeline = (
                "+proj=pipeline "
                f"+step +proj=affine {_helmert4_affine(float(table['dx']), float(table['dy']), theta, scale_ppm)} "
                f"+step +inv {base_proj} "
                "+step +proj=unitconvert +xy_in=rad +xy_out=deg"
            )
            return SourceCrs(name=name, pipeline_to_cgcs2000=pipeline)
    except KeyError as exc:
        raise CrsError(f"local CRS {name!r} of type {kind!r} lacks the parameter {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise CrsError(f"local CRS {name!r}: a parameter is not a number ({exc})") from exc
    raise CrsError(f"local CRS type {kind!r} is not supported; use 'transverse_mercator' or 'helmert4'")


def _helmert4_affine(dx: float, dy: float, theta_arcsec: float, scale_ppm: float) -> str:
    # An explicit affine keeps the sign convention of the documented formula independent of PROJ's
    # helmert conventions.
    theta = math.radians(theta_arcsec / 3600.0)
    k = 1.0 + scale_ppm * 1e-6
    c, s = k * math.cos(theta), k * math.sin(theta)
    return f"+xoff={dx!r} +yoff={dy!r} +s11={c!r} +s12={-s!r} +s21={s!r} +s22={c!r}"


_local = threading.local()


def transformer(src: SourceCrs | str | int, dst: SourceCrs | str | int = CGCS2000) -> Transformer:
    """The cached transformer from ``src`` to ``dst`` (x = longitude/easting, y = latitude/northing)."""
    source = parse_crs(src)
    target = parse_crs(dst)
    cache: dict[tuple[str, str], Transformer] = getattr(_local, "cache", None) or {}
    _local.cache = cache
    key = (source.key, target.key)
    found = cache.get(key)
    if found is not None:
        return found
    try:
        if source.pipeline_to_cgcs2000 is not None:
            if target.epsg != CGCS2000:
                raise CrsError("a city-local system transforms to EPSG:4490 only; go on from there")
            made = Transformer.from_pipeline(source.pipeline_to_cgcs2000)
        elif target.pipeline_to_cgcs2000 is not None:
            raise CrsError("transforms into a city-local system are not supported")
        else:
            assert source.crs is not None and target.crs is not None
            made = Transformer.from_crs(source.crs, target.crs, always_xy=True)
    except ProjError as exc:
        raise CrsError(f"no transformation from {source.name} to {target.name}: {exc}") from exc
    cache[key] = made
    return made


def transform_xy(
    x: ArrayLike,
    y: ArrayLike,
    src: SourceCrs | str | int,
    dst: SourceCrs | str | int = CGCS2000,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Transform coordinate arrays (vectorised). Geographic values are longitude, latitude in degrees."""
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    tx, ty = transformer(src, dst).transform(xs, ys, errcheck=False)
    return np.asarray(tx, dtype=np.float64), np.asarray(ty, dtype=np.float64)


def to_cgcs2000(
    x: ArrayLike, y: ArrayLike, src: SourceCrs | str | int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Source x/y to CGCS2000 longitude and latitude in decimal degrees (EPSG:4490)."""
    return transform_xy(x, y, src, CGCS2000)


def ellipsoidal_height(normal_height: ArrayLike, height_anomaly: float) -> NDArray[np.float64]:
    """Normal height (1985 datum, metres) to CGCS2000 ellipsoidal height: ``h = H + ζ``."""
    return np.asarray(normal_height, dtype=np.float64) + float(height_anomaly)


def normal_height(ellipsoidal: ArrayLike, height_anomaly: float) -> NDArray[np.float64]:
    """CGCS2000 ellipsoidal height (metres) to normal height of the 1985 datum: ``H = h − ζ``."""
    return np.asarray(ellipsoidal, dtype=np.float64) - float(height_anomaly)


def geodetic_to_geocentric(
    lon: ArrayLike, lat: ArrayLike, height: ArrayLike, *, height_anomaly: float = 0.0
) -> NDArray[np.float64]:
    """CGCS2000 lon/lat (degrees) and normal height (metres) to geocentric EPSG:4479 X/Y/Z (metres).

    Returns an array of shape (n, 3). ``height_anomaly`` is the deployment's ζ (see :class:`Settings`).
    """
    lons = np.asarray(lon, dtype=np.float64)
    lats = np.asarray(lat, dtype=np.float64)
    h = ellipsoidal_height(np.broadcast_to(np.asarray(height, dtype=np.float64), lons.shape), height_anomaly)
    X, Y, Z = transformer(CGCS2000_3D, CGCS2000_GEOCENTRIC).transform(lons, lats, h, errcheck=False)
    return np.column_stack([np.ravel(X), np.ravel(Y), np.ravel(Z)])


def geocentric_to_geodetic(
    xyz: ArrayLike, *, height_anomaly: float = 0.0
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Geocentric EPSG:4479 X/Y/Z (metres, shape (n, 3)) to lon/lat (degrees) and normal height (metres)."""
    pts = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    lon, lat, h = transformer(CGCS2000_GEOCENTRIC, CGCS2000_3D).transform(
        pts[:, 0], pts[:, 1], pts[:, 2], errcheck=False
    )
    return np.asarray(lon), np.asarray(lat), normal_height(h, height_anomaly)


def enu_to_ecef_matrix(lon: float, lat: float, height: float, *, height_anomaly: float = 0.0) -> NDArray[np.float64]:
    """The 4×4 column-major-ready matrix from a local east-north-up frame at a point to geocentric metres.

    The point is lon/lat in degrees (CGCS2000) and normal height in metres. Columns 0–2 are the east,
    north and up unit vectors, column 3 the origin; 3D Tiles ``transform`` is this matrix flattened in
    column-major order (``m.T.ravel()``).
    """
    origin = geodetic_to_geocentric([lon], [lat], [height], height_anomaly=height_anomaly)[0]
    lam, phi = math.radians(lon), math.radians(lat)
    east = np.array([-math.sin(lam), math.cos(lam), 0.0])
    north = np.array([-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)])
    up = np.array([math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)])
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = east, north, up, origin
    return m


def transform_geometry(
    geom: BaseGeometry, src: SourceCrs | str | int, dst: SourceCrs | str | int = CGCS2000
) -> BaseGeometry:
    """Transform a shapely geometry (or an array of them); Z values pass through unchanged."""
    t = transformer(src, dst)

    def _apply(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        x, y = t.transform(coords[:, 0], coords[:, 1], errcheck=False)
        out = coords.copy()
        out[:, 0], out[:, 1] = x, y
        return out

    result: BaseGeometry = shapely.transform(geom, _apply, include_z=True)
    return result


def gk_zone_number(lon: float) -> int:
    """The CGCS2000 3-degree Gauss–Krüger zone number (25–45) whose central meridian is nearest ``lon``."""
    zone = math.floor((float(lon) + 1.5) / 3.0)
    if not 25 <= zone <= 45:
        raise CrsError(f"longitude {lon}° lies outside China's 3-degree Gauss–Krüger zones (73.5°E–136.5°E)")
    return zone


def gk_zone_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss–Krüger CRS (CM style, 4534–4554) for a longitude.

    >>> gk_zone_epsg(114.3)  # Wuhan
    4547
    >>> gk_zone_epsg(109.4)  # Enshi
    4545
    """
    return GK_CM_EPSG_FIRST + gk_zone_number(lon) - 25


def gk_zone_prefixed_epsg(zone: int) -> int:
    """EPSG code of the CGCS2000 3-degree GK CRS whose eastings carry the zone number (4513–4533)."""
    if not 25 <= zone <= 45:
        raise CrsError(f"3-degree Gauss–Krüger zone {zone} does not exist in CGCS2000 (25–45)")
    return GK_ZONE_EPSG_FIRST + zone - 25


def zone_from_prefixed_easting(easting: float) -> int | None:
    """The zone number encoded in a zone-prefixed GK easting (e.g. 38 512 345.6 → 38), else ``None``."""
    zone = int(float(easting) // 1_000_000)
    return zone if 25 <= zone <= 45 else None


def check_within_area_of_use(lon: ArrayLike, lat: ArrayLike, source: SourceCrs, *, margin_deg: float = 0.5) -> None:
    """Refuse coordinates (already in CGCS2000 lon/lat degrees) that fall outside the source CRS's area of use.

    Catches swapped axes and wrong zones: raises :class:`CrsError` with a hint; returns ``None`` when all
    finite points lie within the area (plus ``margin_deg``).
    """
    lons = np.asarray(lon, dtype=np.float64)
    lats = np.asarray(lat, dtype=np.float64)
    finite = np.isfinite(lons) & np.isfinite(lats)
    if lons.size and not finite.all():
        raise CrsError(
            f"{int((~finite).sum())} coordinates could not be transformed from {source.name}: the CRS is "
            "probably wrong (swapped x/y, missing zone prefix, degrees given as metres); check --crs"
        )
    area = source.area_of_use()
    if area is None or not lons.size:
        return
    west, south, east, north = area
    outside = (
        (lons < west - margin_deg)
        | (lons > east + margin_deg)
        | (lats < south - margin_deg)
        | (lats > north + margin_deg)
    )
    if outside.any():
        i = int(np.argmax(outside))
        raise CrsError(
            f"{int(outside.sum())} of {lons.size} coordinates fall outside the area of use of {source.name} "
            f"({west:.1f}..{east:.1f}°E, {south:.1f}..{north:.1f}°N), e.g. {lons[i]:.5f}, {lats[i]:.5f}: "
            "are x and y swapped, or is it another zone / CRS? Give the right one with --crs"
        )


def crs_uri(epsg: int | None) -> str:
    """The OGC URI of a CRS (CRS84 for ``None``), as used by OGC API – Features."""
    return CRS84_URI if epsg is None else f"http://www.opengis.net/def/crs/EPSG/0/{epsg}"


def epsg_from_uri(uri: str) -> int | None:
    """Parse an OGC CRS URI (or ``EPSG:n``); ``None`` for CRS84. Raises :class:`CrsError` on others."""
    text = uri.strip()
    if text in {CRS84_URI, "CRS84", "OGC:CRS84", "http://www.opengis.net/def/crs/OGC/1.3/CRS84h"}:
        return None
    m = re.fullmatch(r"(?:https?://www\.opengis\.net/def/crs/EPSG/0/|EPSG:)(\d+)", text, flags=re.IGNORECASE)
    if not m:
        raise CrsError(f"unsupported CRS URI {uri!r}; use {CRS84_URI} or http://www.opengis.net/def/crs/EPSG/0/<code>")
    return int(m.group(1))
