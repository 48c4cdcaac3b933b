"""Archiving an approved BIM pre-review as the as-built version of a model, in one step."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from cim.archive.formats import check_file_name
from cim.archive.service import Archive, VersionInfo
from cim.db import archive as q
from cim.errors import NotFoundError
from cim.settings import Settings


def review_file(settings: Settings, review_id: int, file_name: str) -> Path:
    """Where the review feature keeps a reviewed file: ``<data_dir>/reviews/<review_id>/<file_name>``."""
    return settings.data_path / "reviews" / str(int(review_id)) / check_file_name(file_name)


def archive_review(
    engine: Engine,
    settings: Settings,
    review_id: int,
    *,
    author: str,
    note: str | None = None,
    model_key: str | None = None,
) -> VersionInfo:
    """Archive the reviewed file of ``review_id`` as the next version of ``model_key`` (default ``review-<id>``).

    Records a ``decision`` event (the review's outcome) in the ledger next to the ``put``.
    """
    with engine.connect() as conn:
        review = q.review_row(conn, review_id)
    if review is None:
        raise NotFoundError(f"no review with id {review_id}")
    path = review_file(settings, review_id, review.file_name)
    if not path.is_file():
        raise NotFoundError(f"the reviewed file of review {review_id} is not kept at {path}")
    archive = Archive.open(engine, settings)
    info = archive.put(
        path,
        model_key=model_key or f"review-{review_id}",
        author=author,
        note=note or f"as-built from review {review_id}",
        review_id=review_id,
        building_id=review.building_id,
    )
    archive.record_decision(
        info.model_key,
        info.version,
        decision=f"review {review.status}: archived as built",
        actor=author,
        note=note,
        review_id=review_id,
    )
    return info
