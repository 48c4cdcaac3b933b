"""What the GIS sample generators write (:class:`DistrictFiles`) and the building mix they draw from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

USES_ZH = {
    "residential": "住宅",
    "commercial": "商业",
    "office": "办公",
    "mixed": "商住混合",
    "industrial": "工业",
    "education": "教育",
    "medical": "医疗",
    "public": "公共服务",
}
"""Building uses of the samples and their Chinese source values."""
BLOCK_USES = ("residential", "commercial", "office", "mixed", "industrial", "education", "medical", "public")
BLOCK_P = (0.50, 0.14, 0.10, 0.10, 0.05, 0.05, 0.03, 0.03)
"""Uses of the district's blocks and their shares (the province's footprints draw from the same mix)."""


@dataclass
class DistrictFiles:
    """What :func:`generate_district` wrote.

    ``layers``: (GeoPackage layer, ``--layer`` target, facility kind or None) in load order.
    ``zone_files``: province mode, one GeoPackage of buildings per Gauss–Krüger zone (CRS in the file).
    """

    out_dir: Path
    crs: str
    gpkg: Path | None = None
    shapefile: Path | None = None
    dem: Path | None = None
    layers: list[tuple[str, str, str | None]] = field(default_factory=list)
    zone_files: list[Path] = field(default_factory=list)
    buildings: int = 0
    counts: dict[str, int] = field(default_factory=dict)
