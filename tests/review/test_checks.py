"""The checks catch each broken rule with the right GlobalIds; a compliant model passes.

Geometry of the models (see tests/review/models.py): a block of n storeys of 3 m has slabs ``slab 0…n-1``
(FLOOR) and ``roof``, each 0.2 m thick, and walls ``S/E/N/W wall k`` 0.2 m thick; height n·3 + 0.2 m.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from cim.review.run import review_file
from cim.settings import Settings
from tests.review.city import City
from tests.review.models import Block, write_model

FAILING = Block(3, 20, 63, 65, 10, name="违规楼")  # 60 × 45 m, 10 storeys: 30.2 m
COMPLIANT = Block(30, 28, 60, 52, 4, name="合规楼")  # 30 × 24 m, 4 storeys: 12.2 m


def _by_rule(report, check: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for f in report.checks[check].findings:
        found.setdefault(f.rule, []).append(f)
    return found


@pytest.fixture
def failing(tmp_path: Path, engine: Engine, city: City, settings: Settings):
    model = write_model(tmp_path / "failing.ifc", FAILING, green=(70, 55, 90, 75))  # 20 × 20 = 400 m² green
    report = review_file(
        model.path, settings, engine=engine, parcel="P-1", checks=["planning", "sunlight", "conflicts"]
    )
    return model, report


def test_a_model_that_breaks_every_planning_rule_is_caught_with_the_right_elements(failing) -> None:
    model, report = failing
    rules = _by_rule(report, "planning")
    assert report.checks["planning"].verdict == "fail"

    # Height 10 × 3 + 0.2 = 30.2 m > 24 m. Above 24 m: slabs 8, 9 (24.0–24.2, 27.0–27.2), the roof, and the
    # walls of storeys 8 and 9 (tops 27 and 30 m); storey 7's walls end at exactly 24 m.
    (height,) = rules["planning.height"]
    assert height.value == pytest.approx(30.2) and height.limit == 24.0
    assert set(height.global_ids) == model.names(
        "slab 8",
        "slab 9",
        "roof",
        "S wall 8",
        "E wall 8",
        "N wall 8",
        "W wall 8",
        "S wall 9",
        "E wall 9",
        "N wall 9",
        "W wall 9",
    )

    # Setback: the west face stands at x = 3, 3 m from the red line x = 0 (< 5 m); east 37 m, north 15 m,
    # south 20 m. Every slab and the south and north walls span x 3…63, the west walls stand at x 3…3.2:
    # all of those are too close; only the east walls (x 62.8…63) keep their distance.
    (setback,) = rules["planning.setback"]
    assert setback.value == pytest.approx(3.0, abs=0.01) and setback.limit == 5.0
    assert set(setback.global_ids) == model.names("slab", "roof", "W wall", "S wall", "N wall")

    # FAR from slab areas: 10 floor slabs of 60 × 45 = 27,000 m² over 8,000 m² = 3.375 > 2.0.
    (far,) = rules["planning.far"]
    assert far.severity == "error" and far.value == pytest.approx(3.375, rel=1e-3) and far.limit == 2.0
    assert far.detail["gfa_from"] == "slabs" and far.detail["gfa_m2"] == pytest.approx(27_000.0, rel=1e-6)
    assert far.global_ids == (model.building,)

    # Density: footprint 2,700 m² / 8,000 m² = 33.75 % > 30 %.
    (density,) = rules["planning.density"]
    assert density.severity == "error" and density.value == pytest.approx(0.3375, rel=1e-3)

    # Green: 400 m² / 8,000 m² = 5 % < 30 %.
    (green,) = rules["planning.green_ratio"]
    assert green.severity == "error" and green.value == pytest.approx(0.05, rel=1e-3)
    assert green.global_ids == (model.ids["green"],)

    # Fire spacing to the hall: 68 − 63 = 5 m; the model is high-rise (30.2 m > 24 m, not residential),
    # the hall a 10 m building of grade 1-2: GB 50016 table 5.2.2 asks 9 m. Closer than 9 m to the hall
    # (y 30…50, x ≥ 68): every slab and the east walls (5 m); the south walls end at y 20.2, √(5² + 9.8²) ≈
    # 11 m away, the north walls start at y 64.8, 15.6 m away.
    (fire,) = rules["planning.fire_spacing"]
    assert fire.value == pytest.approx(5.0, abs=0.01) and fire.limit == 9.0
    assert fire.detail["building_name"] == "展厅"
    assert set(fire.global_ids) == model.names("slab", "roof", "E wall")


def test_the_flats_behind_the_tower_are_pushed_below_two_hours_of_sunlight(failing) -> None:
    model, report = failing
    (pushed,) = _by_rule(report, "sunlight")["sunlight.pushed_below"]
    assert pushed.severity == "error" and pushed.limit == 2.0 and pushed.unit == "h"
    assert pushed.global_ids == (model.building,)
    assert pushed.detail["building_name"] == "住宅楼"
    # The mid window of the flats' south façade (x 33, y 75) sees the sun from azimuth ~117° to ~243° on
    # 20 January at 30.6° N: a ray towards it crosses the tower's north face (y = 65, 10 m away) at
    # |x − 33| ≤ 10·tan 63° ≈ 19.6 m, i.e. inside x 3…63, at most 0.9 + (10 / cos 63°)·tan 39.2° ≈ 19 m
    # high, below the 30.2 m roof: no sun at all after. Before, nothing stands south of it: 8 h.
    assert pushed.value == 0.0
    assert pushed.detail["hours_after"] == 0.0
    assert pushed.detail["worst_window"]["hours_before"] >= 2.0


def test_overlap_and_pipe_clearance_are_conflicts_with_the_right_elements(failing) -> None:
    model, report = failing
    rules = _by_rule(report, "conflicts")
    # The shed (x 10…20, y 10…25) lies under the south strip y 20…25: 10 × 5 = 50 m²; the slabs cover it
    # and the south walls (y 20…20.2) cross it (2 m² each); the west walls (x 3…3.2) do not.
    (overlap,) = rules["conflicts.building_overlap"]
    assert overlap.value == pytest.approx(50.0, rel=1e-3)
    assert overlap.detail["building_name"] == "仓库"
    assert set(overlap.global_ids) == model.names("slab", "roof", "S wall")
    # The water main (d 300 > 200 mm: 3.0 m) runs at y = 17; its outer wall is 3 − 0.15 = 2.85 m from
    # everything that reaches y = 20: slabs, south walls and the east and west walls.
    (pipe,) = rules["conflicts.pipe_clearance"]
    assert pipe.value == pytest.approx(2.85, abs=0.01) and pipe.limit == 3.0
    assert set(pipe.global_ids) == model.names("slab", "roof", "S wall", "E wall", "W wall")


def test_a_compliant_model_passes_every_check(tmp_path: Path, engine: Engine, city: City, settings: Settings) -> None:
    # 30 × 24 m, 4 storeys (12.2 m ≤ 24); FAR 4 · 720 / 8,000 = 0.36; density 9 %; green 35 × 70 = 2,450 m²
    # (30.6 % ≥ 30 %); setbacks ≥ 28 m; 8 m to the hall and 10.4 m to the shed (6 m needed between
    # grade 1-2 buildings below 24 m); 11 m from the water main; the flats 23 m north keep ≥ 2 h.
    model = write_model(tmp_path / "ok.ifc", COMPLIANT, green=(62, 5, 97, 75))
    report = review_file(model.path, settings, engine=engine, parcel="P-1")
    failed = {n: [f.to_dict() for f in c.findings if f.severity == "error"] for n, c in report.checks.items()}
    assert report.verdict == "pass", failed
    assert [c.verdict for c in report.checks.values()] == ["pass"] * 6
    green = _by_rule(report, "planning")["planning.green_ratio"][0]
    assert green.value == pytest.approx(2450 / 8000, rel=1e-3)


def test_elements_beyond_the_red_line_fail_the_georef_check(
    tmp_path: Path, engine: Engine, city: City, settings: Settings
) -> None:
    # One storey at x −10…30, y 20…40: the slab, the roof, the south and north walls (x −10…30) and the west
    # wall (x −10…−9.8) cross x = 0; the east wall (x 29.8…30) stays inside. Outside: 10 × 20 = 200 m².
    model = write_model(tmp_path / "out.ifc", Block(-10, 20, 30, 40, 1, name="越界楼"))
    report = review_file(model.path, settings, engine=engine, parcel="P-1", checks=["georef"])
    (outside,) = [f for f in report.checks["georef"].findings if f.rule == "georef.parcel"]
    assert set(outside.global_ids) == model.names("slab", "roof", "S wall", "N wall", "W wall")
    assert outside.value == pytest.approx(200.0, rel=1e-3)
