"""The source-format registry: one registration per input format (py3dtiles' ``Tiler`` / pygeoapi's plug-in table).

A :class:`SourceFormat` says how to recognise its files (by their first bytes and their name), which upload
form fields it takes and how to check them, how to ingest a stored file (the API job), and which ``cim
ingest`` command loads it. The upload endpoint, its OpenAPI form, the job runner, ``GET /formats``, the
``/datasets?kind=`` filter and ``cim ingest`` all read :func:`registered`, so a new format is one new module
with its class plus its name in :data:`PLUGIN_MODULES` (see ``docs/architecture.md``).

This module imports nothing heavy: the readers (ifcopenshell, pyogrio, rasterio) load inside :meth:`run`.
"""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from sqlalchemy import Engine

from cim.settings import Settings
from cim.vocabulary import FACILITY_KINDS

HEAD_BYTES = 64 * 1024
"""How much of a file :func:`identify` reads to recognise it."""


class VectorTarget(NamedTuple):
    """Where a vector layer is stored: its table and that table's geometry column."""

    table: str
    geometry: str


VECTOR_LAYERS: dict[str, VectorTarget] = {
    "buildings": VectorTarget("building", "footprint"),
    "facilities": VectorTarget("facility", "geom"),
    "parcels": VectorTarget("parcel", "geom"),
    "planning": VectorTarget("planning_zone", "geom"),
    "districts": VectorTarget("district", "geom"),
}
"""Targets of a vector ingest (``--layer`` values), in this order."""


@dataclass(frozen=True)
class FileType:
    """One kind of file a format reads: a short name, the suffix an upload is stored under, a title."""

    name: str
    suffix: str
    title: str


@dataclass(frozen=True)
class FormField:
    """One upload form field of a format (documented in the OpenAPI form of ``POST /jobs/ingest``)."""

    description: str
    enum: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema."""
        out: dict[str, Any] = {"type": "string", "description": self.description}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        return out


@dataclass(kw_only=True)
class IngestReport:
    """What every ingest reports: the dataset it stored (and the one that stored version superseded), the CRS of
    the source, whether the same bytes were already the live data (``skipped``: nothing done), and its time."""

    dataset_id: int | None = None
    crs_in: str | None = None
    superseded_dataset_id: int | None = None
    skipped: bool = False
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (the ``--json`` document of the ingest command)."""
        return asdict(self)


class SourceFormat(ABC):
    """A registered input format. Subclasses set the class attributes and implement :meth:`sniff` and :meth:`run`."""

    name: ClassVar[str]
    """The format's key: the upload ``kind``, the ``dataset.kind`` of what it stores and the ``cim ingest`` command."""
    title: ClassVar[str]
    file_types: ClassVar[tuple[FileType, ...]]
    form_fields: ClassVar[Mapping[str, FormField]] = {}
    command: ClassVar[str]
    """``"module:function"`` of the Typer command of ``cim ingest NAME`` (loaded only by the command line)."""

    @abstractmethod
    def sniff(self, head: bytes, filename: str | None) -> FileType | None:
        """The file type when ``head`` (the first :data:`HEAD_BYTES` bytes) and the name are this format's."""

    def supports(self, path: Path) -> bool:
        """Whether this format reads the file at ``path`` (py3dtiles' ``Tiler.supports``)."""
        with open(path, "rb") as f:
            return self.sniff(f.read(HEAD_BYTES), path.name) is not None

    def check_form(self, fields: Mapping[str, str]) -> str | None:
        """Why the upload form ``fields`` cannot be ingested (checked before the file is stored), or ``None``."""
        return None

    @abstractmethod
    def run(self, engine: Engine, settings: Settings, path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
        """Ingest the stored file ``path`` with the job's ``params`` (the form fields); returns the JSON report."""

    def cli_command(self) -> Callable[..., Any]:
        """The Typer command function of ``cim ingest NAME``."""
        module, _, attr = self.command.partition(":")
        function: Callable[..., Any] = getattr(importlib.import_module(module), attr)
        return function

    def describe(self) -> dict[str, Any]:
        """The format as ``GET /formats`` lists it."""
        return {
            "name": self.name,
            "title": self.title,
            "file_types": [{"name": t.name, "suffix": t.suffix, "title": t.title} for t in self.file_types],
            "form_fields": {k: f.schema() for k, f in self.form_fields.items()},
        }


_REGISTRY: dict[str, SourceFormat] = {}

PLUGIN_MODULES: tuple[str, ...] = ()
"""Modules (``ingest.cityjson``…) imported on first use of the registry; each calls :func:`register`."""
_plugins_loaded = False


def register(fmt: SourceFormat) -> SourceFormat:
    """Add (or replace, by name) a source format; sniffing asks formats in registration order."""
    _REGISTRY[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a format (tests that register a toy plug-in clean up with this)."""
    _REGISTRY.pop(name, None)


def registered() -> tuple[SourceFormat, ...]:
    """Every registered format, in registration order."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        for module in PLUGIN_MODULES:
            importlib.import_module(module)
    return tuple(_REGISTRY.values())


def names() -> tuple[str, ...]:
    """The names of the registered formats (``ifc``, ``vector``, ``raster``…)."""
    return tuple(f.name for f in registered())


def format_named(name: str) -> SourceFormat | None:
    """The format registered as ``name``, or ``None``."""
    registered()
    return _REGISTRY.get(name)


def identify(head: bytes, filename: str | None = None) -> tuple[SourceFormat, FileType] | None:
    """The format and file type of a file from its first bytes and its name, or ``None`` when none reads it."""
    for fmt in registered():
        found = fmt.sniff(head, filename)
        if found is not None:
            return fmt, found
    return None


def form_fields() -> dict[str, FormField]:
    """The upload form fields of every format (the first registration of a field name describes it)."""
    out: dict[str, FormField] = {}
    for fmt in registered():
        for key, field in fmt.form_fields.items():
            out.setdefault(key, field)
    return out


def _strip_bom(head: bytes) -> bytes:
    return head.lstrip(b"\xef\xbb\xbf \t\r\n")


def _suffix(filename: str | None) -> str:
    return Path(filename or "").suffix.lower()


_CRS_FIELD = FormField("Source CRS override, e.g. EPSG:4547.")


class IfcFormat(SourceFormat):
    """IFC models (STEP physical files, IFC2X3 / IFC4 / IFC4X3): elements, buildings and facilities."""

    name = "ifc"
    title = "IFC model"
    file_types = (FileType("ifc", ".ifc", "IFC (STEP)"),)
    form_fields: ClassVar[Mapping[str, FormField]] = {"name": FormField("Dataset name (IFC)."), "crs": _CRS_FIELD}
    command = "cim.cli.ingest_ifc:ifc"

    def sniff(self, head: bytes, filename: str | None) -> FileType | None:
        """STEP files start with ``ISO-10303-21``."""
        return self.file_types[0] if _strip_bom(head).startswith(b"ISO-10303-21") else None

    def run(self, engine: Engine, settings: Settings, path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`ingest.ifc.ingest_ifc` with the form's ``name`` and ``crs``."""
        from ingest.ifc import ingest_ifc

        return ingest_ifc(engine, path, settings, name=params.get("name"), crs=params.get("crs")).to_dict()


# GeoJSON's top-level object names its type (RFC 7946 §3): a JSON text without one (CityJSON, a config file,
# anything else that starts with "{") is not GeoJSON.
_GEOJSON_TYPE = re.compile(rb'"type"\s*:\s*"(FeatureCollection|Feature)"')
_OTHER_JSON_TYPE = re.compile(rb'^\{\s*"type"\s*:\s*"(?!FeatureCollection"|Feature")')
_FEATURES = re.compile(rb'"features"\s*:\s*\[')


class VectorFormat(SourceFormat):
    """GIS vector layers (GeoPackage, zipped or plain Shapefile, GeoJSON, FlatGeobuf, CSV with WKT)."""

    name = "vector"
    title = "GIS vector layer"
    file_types = (
        FileType("gpkg", ".gpkg", "GeoPackage"),
        FileType("zip", ".zip", "zipped Shapefile"),
        FileType("geojson", ".geojson", "GeoJSON"),
        FileType("fgb", ".fgb", "FlatGeobuf"),
    )
    form_fields: ClassVar[Mapping[str, FormField]] = {
        "layer": FormField("Target layer of a vector file (required for vector).", tuple(VECTOR_LAYERS)),
        "facility_kind": FormField("facility.kind for a facilities layer.", tuple(FACILITY_KINDS)),
        "crs": _CRS_FIELD,
        "encoding": FormField("Attribute encoding of a shapefile (GBK…)."),
        "source_layer": FormField("Layer inside a GeoPackage."),
    }
    command = "cim.cli.ingest_gis:vector"

    def sniff(self, head: bytes, filename: str | None) -> FileType | None:
        """GeoPackage (SQLite) and FlatGeobuf by magic bytes, a zip archive, or a GeoJSON object by its type."""
        gpkg, zipped, geojson, fgb = self.file_types
        if head.startswith(b"SQLite format 3\x00"):
            return gpkg
        if head.startswith(b"PK\x03\x04"):
            return zipped
        if head.startswith(b"fgb\x03"):
            return fgb
        text = _strip_bom(head)
        if not text.startswith(b"{") or _OTHER_JSON_TYPE.match(text):
            return None
        if _GEOJSON_TYPE.search(text) or _FEATURES.search(text) or _suffix(filename) == ".geojson":
            return geojson
        return None

    def check_form(self, fields: Mapping[str, str]) -> str | None:
        """A layer is required; a facilities layer needs its facility kind, other layers take none."""
        layer = fields.get("layer")
        if layer not in VECTOR_LAYERS:
            return f"a vector upload needs layer = one of {', '.join(VECTOR_LAYERS)}"
        kind = fields.get("facility_kind")
        if layer == "facilities" and kind not in FACILITY_KINDS:
            return f"a facilities upload needs facility_kind = one of {', '.join(FACILITY_KINDS)}"
        if layer != "facilities" and kind is not None:
            return "facility_kind applies to layer = facilities only"
        return None

    def run(self, engine: Engine, settings: Settings, path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`ingest.vector.ingest_vector` with the form's layer, facility kind, CRS, encoding and source layer."""
        from ingest.vector import ingest_vector

        report = ingest_vector(
            engine,
            path,
            settings,
            layer=params["layer"],
            kind=params.get("facility_kind"),
            crs=params.get("crs"),
            encoding=params.get("encoding"),
            source_layer=params.get("source_layer"),
        )
        return report.to_dict()


class RasterFormat(SourceFormat):
    """Elevation rasters (GeoTIFF, also BigTIFF), stored as Cloud-Optimised GeoTIFFs."""

    name = "raster"
    title = "DEM raster"
    file_types = (FileType("geotiff", ".tif", "GeoTIFF"),)
    form_fields: ClassVar[Mapping[str, FormField]] = {"crs": _CRS_FIELD}
    command = "cim.cli.ingest_gis:raster"

    def sniff(self, head: bytes, filename: str | None) -> FileType | None:
        """TIFF and BigTIFF headers in either byte order."""
        return self.file_types[0] if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+") else None

    def run(self, engine: Engine, settings: Settings, path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
        """:func:`ingest.raster.ingest_raster` of a DEM."""
        from ingest.raster import ingest_raster

        report = ingest_raster(engine, path, settings, kind=params.get("raster_kind") or "dem", crs=params.get("crs"))
        return report.to_dict()


register(IfcFormat())
register(VectorFormat())
register(RasterFormat())
