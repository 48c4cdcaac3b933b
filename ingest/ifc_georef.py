"""Where an IFC model lies on the Earth: LoGeoRef 50/40/30/20 and the user's overrides.

A :class:`Georeference` maps the model's world (engineering) coordinates, in metres as the geometry
iterator returns them, to CGCS2000 longitude/latitude (degrees, EPSG:4490) and normal height (metres):

1. ``IfcMapConversion`` / ``IfcMapConversionScaled`` / ``IfcRigidOperation`` with an ``IfcProjectedCRS``
   or ``IfcGeographicCRS`` (IFC4 and later): LoGeoRef 50.
2. ``ePSet_MapConversion`` + ``ePSet_ProjectedCRS`` (IFC2X3 convention): LoGeoRef 50.
3. ``IfcSite`` RefLatitude/RefLongitude/RefElevation (20), at the site's placement (30), turned by the
   context's TrueNorth (40): a transverse Mercator plane tangent at the site's reference point.

``--crs``, ``--origin LON,LAT,H`` and ``--rotation DEG`` override what the file says.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import ifcopenshell
import ifcopenshell.util.element
import ifcopenshell.util.placement
import ifcopenshell.util.unit
import numpy as np
from numpy.typing import NDArray

from cim.crs import CGCS2000_ELLIPSOID, SourceCrs, parse_crs, to_cgcs2000
from cim.errors import CrsError, IngestError

NO_GEOREFERENCE_HINT = (
    "it has no IfcMapConversion/IfcRigidOperation, no ePSet_MapConversion and no IfcSite "
    "RefLatitude/RefLongitude; give its position with --origin LON,LAT,H (CGCS2000 degrees and normal "
    "height in metres of the model origin, optionally --rotation DEG) or, when the model coordinates are "
    "already map coordinates, with --crs (e.g. --crs EPSG:4547)"
)


@dataclass(frozen=True)
class Georeference:
    """A 2D similarity plus height offset from model metres to a map CRS, then the CRS to CGCS2000.

    ``E = eastings + scale_xy·(cos·(x−x0) − sin·(y−y0))``, ``N = northings + scale_xy·(sin·(x−x0) +
    cos·(y−y0))``, ``H = height + scale_z·(z−z0)``; (x, y, z) are model world coordinates in metres,
    E/N are in the units of ``crs``, H is a normal height in metres.
    """

    level: int
    method: str
    crs: SourceCrs
    crs_in: str
    eastings: float = 0.0
    northings: float = 0.0
    height: float = 0.0
    cos: float = 1.0
    sin: float = 0.0
    scale_xy: float = 1.0
    scale_z: float = 1.0
    scale_y: float | None = None
    local_origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_map(self, xyz: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Model world coordinates (n, 3 metres) to map E, N (CRS units) and normal height H (metres)."""
        x = xyz[:, 0] - self.local_origin[0]
        y = xyz[:, 1] - self.local_origin[1]
        sy = self.scale_xy if self.scale_y is None else self.scale_y
        e = self.eastings + self.scale_xy * (self.cos * x) - sy * (self.sin * y)
        n = self.northings + self.scale_xy * (self.sin * x) + sy * (self.cos * y)
        h = self.height + self.scale_z * (xyz[:, 2] - self.local_origin[2])
        return e, n, h

    def to_geodetic(
        self, xyz: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Model world coordinates (n, 3 metres) to CGCS2000 lon, lat (degrees) and normal height (metres)."""
        e, n, h = self.to_map(xyz)
        lon, lat = to_cgcs2000(e, n, self.crs)
        return lon, lat, h

    def describe(self) -> dict[str, Any]:
        """The parameters as plain values, for the dataset summary."""
        return {
            "level": self.level,
            "method": self.method,
            "crs": self.crs_in,
            "eastings": self.eastings,
            "northings": self.northings,
            "height": self.height,
            "rotation_deg": math.degrees(math.atan2(self.sin, self.cos)),
            "scale": self.scale_xy,
            "notes": list(self.notes),
        }


def tangent_plane_crs(lon: float, lat: float) -> SourceCrs:
    """A transverse Mercator plane on the CGCS2000 ellipsoid centred on (lon, lat) degrees: x east, y north, m."""
    return parse_crs(
        f"+proj=tmerc +lat_0={lat!r} +lon_0={lon!r} +k=1 +x_0=0 +y_0=0 {CGCS2000_ELLIPSOID} +units=m +no_defs"
    )


def georeference_of(
    model: ifcopenshell.file,
    *,
    crs: str | None = None,
    origin: tuple[float, float, float] | None = None,
    rotation: float | None = None,
) -> Georeference:
    """The georeference of a model, overrides first; raises :class:`IngestError` when there is none.

    ``origin`` is (lon, lat, normal height) of the model's origin in CGCS2000 degrees/metres; ``rotation``
    (degrees, counter-clockwise) is the angle from east to the model's +X axis.
    """
    unit = float(ifcopenshell.util.unit.calculate_unit_scale(model))
    if origin is not None:
        lon, lat, h = origin
        theta = math.radians(rotation or 0.0)
        return Georeference(
            level=20,
            method="override --origin",
            crs=tangent_plane_crs(lon, lat),
            crs_in=f"origin {lon},{lat},{h} rotation {rotation or 0.0}",
            height=h,
            cos=math.cos(theta),
            sin=math.sin(theta),
        )
    try:
        found = _map_conversion(model, unit, crs)
    except IngestError as exc:
        # A map conversion to a CRS pyproj does not know: the site's latitude/longitude still places the
        # model (less exactly); without them the user has to name the CRS.
        fallback = _site_reference(model, unit) if crs is None else None
        if fallback is None:
            raise
        return dataclasses.replace(fallback, notes=(*fallback.notes, f"map conversion not used: {exc}"))
    if found is not None:
        return found
    if crs is not None:
        source = parse_crs(crs)
        theta = math.radians(rotation or 0.0)
        return Georeference(
            level=50, method="override --crs", crs=source, crs_in=source.key, cos=math.cos(theta), sin=math.sin(theta)
        )
    found = _site_reference(model, unit)
    if found is not None:
        return found
    raise IngestError(f"the model cannot be placed on the map: {NO_GEOREFERENCE_HINT}; nothing was stored")


def _crs_from_name(name: str | None, override: str | None) -> SourceCrs:
    if override is not None:
        return parse_crs(override)
    if not name:
        raise IngestError("the model's map conversion names no CRS; give it with --crs (e.g. --crs EPSG:4547)")
    try:
        return parse_crs(name)
    except CrsError as exc:
        raise IngestError(
            f"the model's projected CRS {name!r} is not a CRS pyproj knows; give it with --crs (e.g. --crs EPSG:4547)"
        ) from exc


def _crs_unit_m(source: SourceCrs) -> float:
    if source.crs is None or not source.crs.axis_info:
        return 1.0
    factor = source.crs.axis_info[0].unit_conversion_factor
    return float(factor) if factor else 1.0


def _map_unit_m(crs_entity: Any) -> float | None:
    unit = getattr(crs_entity, "MapUnit", None)
    if unit is None:
        return None
    return _si_unit_scale(unit)


def _si_unit_scale(unit: Any) -> float:
    if unit.is_a("IfcSIUnit"):
        return float(ifcopenshell.util.unit.get_prefix_multiplier(getattr(unit, "Prefix", None)))
    if unit.is_a("IfcConversionBasedUnit"):
        factor = unit.ConversionFactor
        return float(factor.ValueComponent.wrappedValue) * _si_unit_scale(factor.UnitComponent)
    return 1.0


def _effective_scale(scale: float | None, project_unit_m: float, map_unit_m: float) -> tuple[float, str | None]:
    """Map units per model metre from the IFC ``Scale`` (map units per project unit by the standard).

    Some exporters (the buildingSMART IFC4.3 samples among them) write the inverse (project units per map
    unit, 1000 for millimetre models); that reading is accepted when it is the one that makes sense.
    """
    expected = project_unit_m / map_unit_m
    if scale is None or scale == 0:
        return 1.0 / map_unit_m, None
    if abs(scale / expected - 1.0) < 0.05:
        return scale / project_unit_m, None
    if abs(scale - 1.0) < 0.05:
        return scale / map_unit_m, None
    if abs(scale * expected - 1.0) < 0.05:
        return 1.0 / map_unit_m, (
            f"Scale {scale} read as project units per map unit (the standard says map units per project unit)"
        )
    return scale / project_unit_m, f"unusual Scale {scale} applied as map units per project unit"


def _map_conversion(model: ifcopenshell.file, unit: float, override: str | None) -> Georeference | None:
    schema = model.schema.upper()
    if schema != "IFC2X3":
        operations = list(model.by_type("IfcCoordinateOperation"))
        for op in operations:
            source = op.SourceCRS
            if source is None or not source.is_a("IfcGeometricRepresentationContext"):
                continue
            if source.ContextType not in (None, "Model"):
                continue
            return _from_operation(op, unit, override)
        for op in operations:
            return _from_operation(op, unit, override)
        return None
    return _from_epset(model, unit, override)


def _measure(value: Any) -> float:
    return float(value.wrappedValue if hasattr(value, "wrappedValue") else value)


def _from_operation(op: Any, unit: float, override: str | None) -> Georeference:
    target = op.TargetCRS
    if op.is_a("IfcRigidOperation"):
        first, second = _measure(op.FirstCoordinate), _measure(op.SecondCoordinate)
        height = float(op.Height or 0.0)
        if target is not None and target.is_a("IfcGeographicCRS") and override is None:
            angle_unit = target.AngleUnit
            deg = 1.0 if angle_unit is None else math.degrees(_si_unit_scale(angle_unit))
            lon, lat = first * deg, second * deg
            geo = _crs_from_name(target.Name, None)
            clon, clat = to_cgcs2000([lon], [lat], geo)
            return Georeference(
                level=50,
                method="IfcRigidOperation",
                crs=tangent_plane_crs(float(clon[0]), float(clat[0])),
                crs_in=geo.key,
                height=height,
            )
        source = _crs_from_name(getattr(target, "Name", None), override)
        per_m = 1.0 / _crs_unit_m(source)
        return Georeference(
            level=50,
            method="IfcRigidOperation",
            crs=source,
            crs_in=source.key,
            eastings=first,
            northings=second,
            height=height,
            scale_xy=per_m,
        )
    source = _crs_from_name(getattr(target, "Name", None), override)
    map_unit = _map_unit_m(target) if override is None else None
    if map_unit is None:
        map_unit = _crs_unit_m(source)
    scale_attr = getattr(op, "Scale", None)
    scale, note = _effective_scale(None if scale_attr is None else float(scale_attr), unit, map_unit)
    a = float(op.XAxisAbscissa if op.XAxisAbscissa is not None else 1.0)
    b = float(op.XAxisOrdinate if op.XAxisOrdinate is not None else 0.0)
    norm = math.hypot(a, b) or 1.0
    fx = fy = fz = 1.0
    if op.is_a("IfcMapConversionScaled"):
        fx, fy, fz = float(op.FactorX), float(op.FactorY), float(op.FactorZ)
    return Georeference(
        level=50,
        method=op.is_a(),
        crs=source,
        crs_in=source.key,
        eastings=float(op.Eastings),
        northings=float(op.Northings),
        height=float(op.OrthogonalHeight or 0.0) * map_unit,
        cos=a / norm,
        sin=b / norm,
        scale_xy=scale * fx,
        scale_y=scale * fy,
        scale_z=scale * map_unit * fz,
        notes=(note,) if note else (),
    )


def _from_epset(model: ifcopenshell.file, unit: float, override: str | None) -> Georeference | None:
    for holder in [*model.by_type("IfcProject"), *model.by_type("IfcSite")]:
        psets = ifcopenshell.util.element.get_psets(holder)
        conv = psets.get("ePSet_MapConversion")
        if not conv or conv.get("Eastings") is None:
            continue
        crs_props = psets.get("ePSet_ProjectedCRS") or {}
        source = _crs_from_name(crs_props.get("Name"), override)
        map_unit = _crs_unit_m(source)
        scale, note = _effective_scale(conv.get("Scale"), unit, map_unit)
        a = float(conv.get("XAxisAbscissa") or 1.0)
        b = float(conv.get("XAxisOrdinate") or 0.0)
        norm = math.hypot(a, b) or 1.0
        return Georeference(
            level=50,
            method="ePSet_MapConversion",
            crs=source,
            crs_in=source.key,
            eastings=float(conv["Eastings"]),
            northings=float(conv.get("Northings") or 0.0),
            height=float(conv.get("OrthogonalHeight") or 0.0) * map_unit,
            cos=a / norm,
            sin=b / norm,
            scale_xy=scale,
            scale_z=scale * map_unit,
            notes=(note,) if note else (),
        )
    return None


def compound_angle_deg(value: Any) -> float | None:
    """An IfcCompoundPlaneAngleMeasure (degrees, minutes, seconds, millionths; all share the sign) in degrees."""
    if not value:
        return None
    parts = [float(v) for v in value] + [0.0] * (4 - len(value))
    d, m, s, us = parts[:4]
    return d + m / 60.0 + s / 3600.0 + us / 3.6e9


def _site_reference(model: ifcopenshell.file, unit: float) -> Georeference | None:
    for site in model.by_type("IfcSite"):
        lat = compound_angle_deg(site.RefLatitude)
        lon = compound_angle_deg(site.RefLongitude)
        if lat is None or lon is None:
            continue
        level = 20
        origin = np.zeros(3)
        if site.ObjectPlacement is not None:
            matrix = ifcopenshell.util.placement.get_local_placement(site.ObjectPlacement)
            origin = np.asarray(matrix[:3, 3], dtype=np.float64) * unit
            if np.abs(origin).max() > 1e-9 or not np.allclose(matrix[:3, :3], np.eye(3)):
                level = 30
        cos, sin = 1.0, 0.0
        north = _true_north(model)
        if north is not None:
            nx, ny = north
            cos, sin = ny, nx
            if abs(nx) > 1e-12:
                level = 40
        return Georeference(
            level=level,
            method="IfcSite RefLatitude/RefLongitude",
            crs=tangent_plane_crs(lon, lat),
            crs_in=f"IfcSite {lat:.8f},{lon:.8f}",
            height=float(site.RefElevation or 0.0) * unit,
            cos=cos,
            sin=sin,
            local_origin=(float(origin[0]), float(origin[1]), float(origin[2])),
        )
    return None


def _true_north(model: ifcopenshell.file) -> tuple[float, float] | None:
    for context in model.by_type("IfcGeometricRepresentationContext", include_subtypes=False):
        if context.ContextType not in (None, "Model") or context.TrueNorth is None:
            continue
        ratios = list(context.TrueNorth.DirectionRatios)[:2]
        norm = math.hypot(*ratios)
        if norm > 0:
            return ratios[0] / norm, ratios[1] / norm
    return None
