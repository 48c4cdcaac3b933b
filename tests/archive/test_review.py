"""An approved pre-review is archived as the as-built version in one step."""

from __future__ import annotations

import shutil

import pytest
from sqlalchemy import Engine, text

from cim.archive import Archive, archive_review, review_file, verify
from cim.errors import NotFoundError
from cim.settings import Settings
from tests.conftest import IFC_DIR

A = IFC_DIR / "IfcOpenHouse_IFC4.ifc"


def _review(engine: Engine, file_name: str = A.name) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO review (file_name, sha256, status, passed) "
                    "VALUES (:f, 'x', 'passed', true) RETURNING id"
                ),
                {"f": file_name},
            ).scalar_one()
        )


def test_an_approved_review_is_archived_with_its_id_and_a_decision_in_the_ledger(engine: Engine, settings: Settings):
    review_id = _review(engine)
    kept = review_file(settings, review_id, A.name)
    kept.parent.mkdir(parents=True)
    shutil.copy(A, kept)
    info = archive_review(engine, settings, review_id, author="reviewer-li", note="approved at merge")
    assert (info.model_key, info.version, info.review_id) == (f"review-{review_id}", 1, review_id)
    with engine.connect() as conn:
        kinds = conn.execute(text("SELECT kind FROM archive_ledger ORDER BY seq")).scalars().all()
    assert kinds[-2:] == ["put", "decision"]
    again = archive_review(engine, settings, review_id, author="reviewer-li", model_key="city-hall")
    assert (again.model_key, again.version) == ("city-hall", 1)
    assert verify(Archive.open(engine, settings)).problems == []


def test_archiving_a_review_without_its_file_or_row_is_a_clear_error(engine: Engine, settings: Settings):
    with pytest.raises(NotFoundError, match="no review with id 7"):
        archive_review(engine, settings, 7, author="x")
    review_id = _review(engine)
    with pytest.raises(NotFoundError, match="is not kept at"):
        archive_review(engine, settings, review_id, author="x")


def test_put_with_review_records_the_review(local_archive: Archive, engine: Engine):
    review_id = _review(engine)
    info = local_archive.put(A, model_key="house", review_id=review_id)
    assert info.review_id == review_id
