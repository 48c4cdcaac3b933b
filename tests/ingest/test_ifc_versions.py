"""IFC model versions, transactional failures, refused inputs and the ``cim ingest ifc`` command."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from cim.errors import IngestError
from cim.settings import Settings
from ingest.ifc import ingest_ifc
from sample_models.ifc_bridge import generate_bridge
from sample_models.ifc_office import OfficeLayout, generate_office
from tests.conftest import IFC_DIR


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            "datasets": conn.execute(text("SELECT count(*) FROM dataset")).scalar_one(),
            "buildings": conn.execute(text("SELECT count(*) FROM building")).scalar_one(),
            "elements": conn.execute(text("SELECT count(*) FROM element")).scalar_one(),
            "live_elements": conn.execute(text("SELECT count(*) FROM element WHERE valid_to IS NULL")).scalar_one(),
        }


def test_new_version_of_a_model_supersedes_the_old_one_and_keeps_history(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    first = ingest_ifc(engine, generate_office(tmp_path / "v1.ifc"), settings)
    second = ingest_ifc(engine, generate_office(tmp_path / "v2.ifc", OfficeLayout(storeys=3)), settings)
    assert not second.skipped
    assert second.superseded_dataset_id == first.dataset_id and second.version == 2
    with engine.connect() as conn:
        statuses: dict[int, str] = dict(conn.execute(text("SELECT id, status FROM dataset")).all())
        live_buildings = conn.execute(text("SELECT dataset_id, storeys FROM building WHERE valid_to IS NULL")).all()
        old_live = conn.execute(
            text("SELECT count(*) FROM element WHERE dataset_id = :d AND valid_to IS NULL"), {"d": first.dataset_id}
        ).scalar_one()
    assert statuses == {first.dataset_id: "superseded", second.dataset_id: "loaded"}
    assert live_buildings == [(second.dataset_id, 3)]
    assert old_live == 0
    counts = _counts(engine)
    assert counts["elements"] == first.elements + second.elements
    assert counts["live_elements"] == second.elements


def test_failure_after_rows_were_written_rolls_everything_back(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    before = _counts(engine)
    bridge = generate_bridge(tmp_path / "bridge.ifc")
    # Map coordinates read as degrees cannot be transformed: the failure comes in the middle of the COPY.
    with pytest.raises(IngestError, match="could not be transformed"):
        ingest_ifc(engine, bridge, settings, crs="EPSG:4326")
    assert _counts(engine) == before
    report = ingest_ifc(engine, bridge, settings)
    assert report.elements == 15 and not report.skipped


def test_ifczip_and_non_ifc_files_are_refused_with_reasons(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "model.ifczip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(IFC_DIR / "slab-openings.ifc", "slab-openings.ifc")
    with pytest.raises(IngestError, match="unzip"):
        ingest_ifc(engine, archive, settings)
    text_file = tmp_path / "notes.ifc"
    text_file.write_text("这不是 IFC 文件\n", encoding="utf-8")
    with pytest.raises(IngestError, match="not an IFC file"):
        ingest_ifc(engine, text_file, settings)
    unknown = tmp_path / "ifc5.ifc"
    unknown.write_text((IFC_DIR / "slab-openings.ifc").read_text().replace("IFC4X3_ADD2", "IFC9"), encoding="utf-8")
    with pytest.raises(IngestError, match="not supported"):
        ingest_ifc(engine, unknown, settings)
    assert _counts(engine)["datasets"] == 0


def test_cli_json_summary_and_refusal_without_georeference(run_cim: Any, engine: Engine) -> None:
    done = run_cim("ingest", "ifc", str(IFC_DIR / "AC20-FZK-Haus.ifc"), "--json")
    assert done.exit_code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["schema"] == "IFC4" and summary["georef_level"] == 40
    assert summary["crs_in"].startswith("IfcSite")
    assert summary["elements_by_class"]["IfcWallStandardCase"] == 13
    assert summary["failed"] == [] and summary["wall_time_s"] > 0 and summary["dataset_id"] > 0

    again = run_cim("ingest", "ifc", str(IFC_DIR / "AC20-FZK-Haus.ifc"), "--json")
    assert json.loads(again.stdout)["skipped"] is True

    refused = run_cim("ingest", "ifc", str(IFC_DIR / "IfcOpenHouse_IFC4.ifc"))
    assert refused.exit_code == IngestError.exit_code
    assert "--origin" in refused.stderr and "nothing was stored" in refused.stderr

    placed = run_cim(
        "ingest",
        "ifc",
        str(IFC_DIR / "IfcOpenHouse_IFC4.ifc"),
        "--origin",
        "114.31,30.58,22.5",
        "--rotation",
        "30",
        "--json",
    )
    assert placed.exit_code == 0, placed.stderr
    assert json.loads(placed.stdout)["georef_method"] == "override --origin"
    with engine.connect() as conn:
        lon, lat, low = conn.execute(
            text("SELECT avg(ST_X(location)), avg(ST_Y(location)), min(min_height) FROM element WHERE dataset_id = :d"),
            {"d": json.loads(placed.stdout)["dataset_id"]},
        ).one()
    assert (
        abs(lon - 114.31) < 0.0003 and abs(lat - 30.58) < 0.0003 and 22.5 - 10.0 < low < 22.5 + 1.0
    )  # its terrain block reaches 8 m down

    bad = run_cim("ingest", "ifc", str(IFC_DIR / "IfcOpenHouse_IFC4.ifc"), "--origin", "30.58")
    assert bad.exit_code == IngestError.exit_code and "LON,LAT,H" in bad.stderr


BROKEN_ELEMENT = """#170= IFCBUILTELEMENT('1kTvXnbbzCWw8lcMd1dR4p',$,'Broken',$,$,#80,#190,$);
#171=IFCRELCONTAINEDINSPATIALSTRUCTURE('2TnxZkTXT08eDuMuhUUFNz',$,'Container','Container to Contained',(#170),#30);
#190= IFCPRODUCTDEFINITIONSHAPE($,$,(#191));
#191= IFCSHAPEREPRESENTATION(#21,'Body','SweptSolid',(#192));
#192= IFCEXTRUDEDAREASOLID(#193,$,#4,1.5);
#193= IFCARBITRARYCLOSEDPROFILEDEF(.AREA.,'degenerate',#194);
#194= IFCPOLYLINE((#63,#63));
ENDSEC;"""


def test_element_whose_geometry_fails_is_listed_and_the_rest_is_ingested(
    run_cim: Any, engine: Engine, tmp_path: Path
) -> None:
    source = (IFC_DIR / "geographic-referencing-rigid-operation.ifc").read_text()
    cut = source.rindex("ENDSEC;")
    broken = tmp_path / "broken-element.ifc"
    broken.write_text(source[:cut] + BROKEN_ELEMENT + source[cut + len("ENDSEC;") :])
    done = run_cim("ingest", "ifc", str(broken), "--json")
    assert done.exit_code == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["failed"] == ["1kTvXnbbzCWw8lcMd1dR4p"]
    assert summary["elements"] == 1 and summary["elements_by_class"] == {"IfcBuiltElement": 1}
    assert "1kTvXnbbzCWw8lcMd1dR4p" in done.stderr  # the warning names it
    assert _counts(engine)["elements"] == 1
