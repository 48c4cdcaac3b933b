"""Review lifecycle: where the reviewed file is kept, the inputs, run times, verdict, the reviewer's decision
and what the approval ingested.

Revision ID: 0002_review
Revises: 0001
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cim.db.migrations import ddl

revision: str = "0002_review"
down_revision: str = "0001"

STATUSES = (
    "('queued','running','reviewed','passed','failed','error','approving','approved','approval_failed','rejected')"
)
"""Lifecycle states; ``passed``/``failed`` are the states of 0001 (a finished review), still accepted."""


def _new_columns() -> list[sa.Column]:
    """The columns this revision adds to ``review``, in order (new objects on every call)."""
    return [
        *ddl.optional(path=sa.Text(), size_bytes=sa.BigInteger(), parcel_ref=sa.Text()),
        ddl.jsonb("inputs"),
        *ddl.optional(verdict=sa.String(length=8), error=sa.Text()),
        *ddl.moments("started_at", "finished_at"),
        *ddl.optional(decision=sa.String(length=16), decision_comment=sa.Text(), decided_by=sa.BigInteger()),
        *ddl.moments("decided_at"),
        ddl.jsonb("approval"),
    ]


def upgrade() -> None:
    """Apply this revision."""
    for column in _new_columns():
        op.add_column("review", column)
    op.create_foreign_key("review_decided_by_fkey", "review", "api_key", ["decided_by"], ["id"], ondelete="SET NULL")
    op.create_check_constraint("review_status", "review", f"status IN {STATUSES}")
    op.create_check_constraint("review_verdict", "review", "verdict IS NULL OR verdict IN ('pass','fail')")
    op.create_check_constraint("review_decision", "review", "decision IS NULL OR decision IN ('approve','reject')")


def downgrade() -> None:
    """Revert this revision."""
    op.drop_constraint("review_decision", "review", type_="check")
    op.drop_constraint("review_verdict", "review", type_="check")
    op.drop_constraint("review_status", "review", type_="check")
    op.drop_constraint("review_decided_by_fkey", "review", type_="foreignkey")
    for column in reversed(_new_columns()):
        op.drop_column("review", column.name)
