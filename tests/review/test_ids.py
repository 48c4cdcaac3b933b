"""IDS verdicts agree with the standard's test cases: ``pass-``/``fail-`` cases pass/fail on their model,
``invalid-`` cases are refused as invalid IDS. The cases under ``tests/review/ids`` follow buildingSMART's
naming; three of them cover where ifctester 0.9.0 departs from IDS 1.0 (see cim/review/ids_standard.py).

The model: one wall named ``W`` with ``Description`` null and the property set ``Foo_Bar`` holding
``Foo = 42.000042`` (within 1e-6·(1 + 42) of 42), ``Far = 42.000084`` (beyond it) and ``Count = 42``.
"""

from __future__ import annotations

from pathlib import Path

import ifcopenshell
import ifcopenshell.api.material
import ifcopenshell.api.project
import ifcopenshell.api.pset
import ifcopenshell.api.root
import pytest

from cim.errors import ReviewError
from cim.review import ids_standard

CASES = sorted((Path(__file__).parent / "ids").glob("*-*.ids"))


@pytest.fixture(scope="module")
def model() -> ifcopenshell.file:
    f = ifcopenshell.api.project.create_file(version="IFC4")
    ifcopenshell.api.root.create_entity(f, ifc_class="IfcProject", name="P")
    wall = ifcopenshell.api.root.create_entity(f, ifc_class="IfcWall", name="W")
    pset = ifcopenshell.api.pset.add_pset(f, product=wall, name="Foo_Bar")
    ifcopenshell.api.pset.edit_pset(f, pset=pset, properties={"Foo": 42.000042, "Far": 42.000084, "Count": 42})
    material = ifcopenshell.api.material.add_material(f, name="Concrete")
    ifcopenshell.api.material.assign_material(f, products=[wall], material=material)
    return f


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_the_ids_test_case_behaves_as_its_name_says(case: Path, model: ifcopenshell.file) -> None:
    expected = case.name.split("-", 1)[0]
    if expected == "invalid":
        with pytest.raises(ReviewError, match="not a valid IDS"):
            ids_standard.open_ids(case)
        return
    ids = ids_standard.validate(ids_standard.open_ids(case), model)
    assert [s.status for s in ids.specifications] == [expected == "pass"]


def test_the_patches_do_not_outlive_the_validation(model: ifcopenshell.file) -> None:
    from ifctester import facet

    ids_standard.validate(ids_standard.open_ids(CASES[0]), model)
    assert facet.is_x is not ids_standard._standard_is_x


def test_the_default_cim_delivery_ids_is_valid_ids() -> None:
    ids = ids_standard.open_ids(ids_standard.DEFAULT_IDS)
    assert len(ids.specifications) == 4
