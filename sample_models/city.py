"""The sample city of the demo: the synthetic Wuhan district (GIS + DEM) plus the IFC office and bridge.

Generated once into a folder (kept between runs, so re-running the demo re-ingests nothing: every ingest
is a no-op for byte-identical files) and loaded through the normal ingest paths.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from cim.settings import Settings
from sample_models.district import generate_district
from sample_models.ifc_bridge import generate_bridge
from sample_models.ifc_office import generate_office
from sample_models.load import load_district
from sample_models.sample_files import DistrictFiles

MANIFEST = "sample-city.json"


@dataclass
class SampleCityReport:
    """What loading the sample city did: files, per-source ingest summaries, wall time."""

    folder: str
    generated: bool
    ingests: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return asdict(self)


def sample_city_files(folder: Path, *, buildings: int = 2000) -> tuple[DistrictFiles, Path, Path, bool]:
    """The sample city's files in ``folder``, generated on first use; returns (district, office, bridge, generated)."""
    manifest = folder / MANIFEST
    office = folder / "office.ifc"
    bridge = folder / "bridge.ifc"
    if manifest.exists():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        district = DistrictFiles(
            out_dir=Path(data["out_dir"]),
            crs=data["crs"],
            gpkg=Path(data["gpkg"]) if data.get("gpkg") else None,
            shapefile=Path(data["shapefile"]) if data.get("shapefile") else None,
            dem=Path(data["dem"]) if data.get("dem") else None,
            layers=[(str(a), str(b), c) for a, b, c in data["layers"]],
            buildings=int(data["buildings"]),
            counts=dict(data.get("counts", {})),
        )
        if all(p is None or p.exists() for p in (district.gpkg, district.dem)) and office.exists() and bridge.exists():
            return district, office, bridge, False
    district = generate_district(folder / "district", buildings=buildings)
    generate_office(office)
    generate_bridge(bridge)
    record = asdict(district)
    manifest.write_text(json.dumps(record, default=str, ensure_ascii=False, indent=2), encoding="utf-8")
    return district, office, bridge, True


def load_sample_city(
    engine: Engine,
    settings: Settings,
    folder: Path | None = None,
    *,
    step: Callable[[str], None] | None = None,
) -> SampleCityReport:
    """Generate (first time) and ingest the sample city; byte-identical sources are skipped on later runs."""
    from ingest.ifc import ingest_ifc

    started = time.perf_counter()
    where = folder or settings.data_path / "samples"
    note = step or (lambda message: None)
    note("generating the sample city")
    district, office, bridge, generated = sample_city_files(where)
    report = SampleCityReport(folder=str(where), generated=generated)
    note("ingesting the district: DEM, districts, parcels, buildings, facilities")
    for result in load_district(engine, settings, district):
        report.ingests.append(result.to_dict())
    for model in (office, bridge):
        note(f"ingesting {model.name}")
        report.ingests.append(ingest_ifc(engine, model, settings).to_dict())
    report.seconds = round(time.perf_counter() - started, 2)
    return report
