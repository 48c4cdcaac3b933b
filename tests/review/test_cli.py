"""``cim review``: exit 0 whenever the review ran (whatever the verdict), one-line errors otherwise."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import IFC_DIR
from tests.review.city import City
from tests.review.models import Block, write_model

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "cim/review/report.schema.json").read_text())
DOCS = Path(__file__).resolve().parents[2] / "docs/review.md"
SMALL = Block(30, 28, 60, 52, 2, name="小楼")


def test_fzk_haus_is_checked_against_its_own_building_height_limit(run_cim) -> None:
    # AC20-FZK-Haus: Pset_SiteCommon.BuildingHeightLimit = 9. (#406, metres). IfcSite RefElevation 110 m
    # places the ±0 level at 110 m; the ground slab "Bodenplatte" reaches 0.2 m below it (109.8 m) and the
    # roof slabs "Dach-1"/"Dach-2" rise to the ridge at 116.318 m: 116.318 − 109.8 = 6.518 m ≤ 9 m.
    result = run_cim("review", str(IFC_DIR / "AC20-FZK-Haus.ifc"), "--checks", "planning", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    (limit,) = [f for f in report["checks"]["planning"]["findings"] if f["rule"] == "planning.height_pset"]
    assert limit["limit"] == 9.0 and limit["severity"] == "info"
    assert limit["value"] == pytest.approx(6.518, abs=0.01)
    assert "0KMpiAlnb52RgQuM1CwVfd" in limit["global_ids"]  # the IfcSite that carries the limit
    assert report["checks"]["planning"]["verdict"] == "pass"


def test_a_model_over_its_own_height_limit_fails_but_the_command_succeeds(run_cim, tmp_path: Path) -> None:
    # 2 storeys: 2 × 3 + 0.2 = 6.2 m against a site limit of 5 m; above 5 m: slab 1's top is 3.2 m,
    # storey 1's walls end at 6.0 m and the roof at 6.2 m.
    model = write_model(tmp_path / "m.ifc", SMALL, height_limit=5.0)
    result = run_cim("review", str(model.path), "--checks", "planning", "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["verdict"] == "fail"
    (over,) = [f for f in report["checks"]["planning"]["findings"] if f["rule"] == "planning.height_pset"]
    assert over["value"] == pytest.approx(6.2) and over["limit"] == 5.0
    assert set(over["global_ids"]) == model.names("roof", "S wall 1", "E wall 1", "N wall 1", "W wall 1") | {model.site}


def test_a_model_without_georeference_fails_the_georef_check_with_how_to_fix_it(run_cim, tmp_path: Path) -> None:
    model = write_model(tmp_path / "nogeo.ifc", SMALL, georeferenced=False)
    result = run_cim("review", str(model.path), "--checks", "georef,planning", "--json")
    assert result.exit_code == 0
    checks = json.loads(result.stdout)["checks"]
    (missing,) = checks["georef"]["findings"]
    assert missing["rule"] == "georef.missing" and missing["severity"] == "error"
    assert "IfcMapConversion" in missing["message_en"] and "IfcMapConversion" in missing["message_zh"]
    assert checks["planning"]["verdict"] == "skipped"


def test_reports_are_written_and_an_ifczip_is_reviewed(run_cim, tmp_path: Path, city: City) -> None:
    model = write_model(tmp_path / "m.ifc", SMALL)
    packed = tmp_path / "m.ifczip"
    with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(model.path, "m.ifc")
    html, pdf, bcf = tmp_path / "r.html", tmp_path / "r.pdf", tmp_path / "r.bcfzip"
    result = run_cim(
        "review", str(packed), "--parcel", "P-1", "--html", str(html), "--pdf", str(pdf), "--bcf", str(bcf), "--json"
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    jsonschema.validate(report, SCHEMA)
    assert report["parcel"]["code"] == "P-1"
    assert "BIM 模型预审报告" in html.read_text(encoding="utf-8") and 'id="lang-switch"' in html.read_text()
    assert pdf.read_bytes().startswith(b"%PDF")
    assert zipfile.ZipFile(bcf).read("bcf.version").decode().count('VersionId="2.1"') == 1
    again = run_cim("review", str(packed), "--html", str(html))
    assert again.exit_code != 0 and "--overwrite" in again.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["review", "{tmp}/notifc.ifc"], "not an IFC model"),
        (["review", "{tmp}/m.ifc", "--ids", "{tmp}/bad.ids"], "not a valid IDS"),
        (["review", "{tmp}/m.ifc", "--parcel", "NOPE"], "does not exist"),
        (["review", "{tmp}/bomb.ifczip"], "unpacks to"),
        (["review", "{tmp}/m.ifc", "--checks", "colour"], "unknown checks"),
    ],
)
def test_a_review_that_cannot_run_exits_non_zero_with_one_line(run_cim, tmp_path: Path, args, words) -> None:
    write_model(tmp_path / "m.ifc", SMALL)
    (tmp_path / "notifc.ifc").write_text("hello")
    (tmp_path / "bad.ids").write_text("<ids/>")
    with zipfile.ZipFile(tmp_path / "bomb.ifczip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("m.ifc", b"ISO-10303-21;" + b"\0" * (30 * 1024 * 1024))
    result = run_cim(*[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code != 0
    assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_documented_schema_is_the_one_reports_are_validated_against() -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- report-schema -->", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    assert json.loads(block) == SCHEMA


def test_schema_errors_name_their_entity_and_global_id(run_cim) -> None:
    # AC20-FZK-Haus (IFC4) line #78592: IFCRELSPACEBOUNDARY('2GnYVfNeYR6NOPkw4t5oDJ',#12,'2ndLevel','2a',#76214,$,…)
    # leaves RelatedBuildingElement ($), which IFC4 does not make optional; and #34524
    # IFCPROPERTYSINGLEVALUE('EmbodiedEnergy',$,IFCPOSITIVERATIOMEASURE(0.),$) breaks the type's rule SELF > 0.
    result = run_cim("review", str(IFC_DIR / "AC20-FZK-Haus.ifc"), "--checks", "schema", "--json")
    assert result.exit_code == 0
    check = json.loads(result.stdout)["checks"]["schema"]
    assert check["verdict"] == "fail"
    boundary = [f for f in check["findings"] if "2GnYVfNeYR6NOPkw4t5oDJ" in f["global_ids"]]
    assert boundary and boundary[0]["detail"]["entity"] == "IfcRelSpaceBoundary"
    assert boundary[0]["detail"]["attribute"] == "IfcRelSpaceBoundary.RelatedBuildingElement"
    rule = [f for f in check["findings"] if f["detail"].get("step_id") == 34524]
    assert rule and rule[0]["rule"] == "schema.simpletype_rule" and rule[0]["global_ids"] == []


def test_a_model_over_the_review_upload_limit_is_refused(run_cim, tmp_path: Path, monkeypatch) -> None:
    model = write_model(tmp_path / "m.ifc", SMALL)
    monkeypatch.setenv("CIM_REVIEW_UPLOAD_LIMIT_BYTES", "1024")
    result = run_cim("review", str(model.path))
    assert result.exit_code != 0 and "over the review limit" in result.stderr
