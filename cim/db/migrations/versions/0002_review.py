"""Review lifecycle: where the reviewed file is kept, the inputs, run times, verdict, the reviewer's decision
and what the approval ingested.

Revision ID: 0002_review
Revises: 0001
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_review"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "('queued','running','reviewed','passed','failed','error','approving','approved','approval_failed','rejected')"
"""Lifecycle states; ``passed``/``failed`` are the states of 0001 (a finished review), still accepted."""


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("review", sa.Column("path", sa.Text(), nullable=True))
    op.add_column("review", sa.Column("size_bytes", sa.BigInteger(), nullable=True))
    op.add_column("review", sa.Column("parcel_ref", sa.Text(), nullable=True))
    op.add_column(
        "review",
        sa.Column("inputs", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column("review", sa.Column("verdict", sa.String(length=8), nullable=True))
    op.add_column("review", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("review", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("review", sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("review", sa.Column("decision", sa.String(length=16), nullable=True))
    op.add_column("review", sa.Column("decision_comment", sa.Text(), nullable=True))
    op.add_column("review", sa.Column("decided_by", sa.BigInteger(), nullable=True))
    op.add_column("review", sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "review",
        sa.Column("approval", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )
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
    for column in (
        "approval",
        "decided_at",
        "decided_by",
        "decision_comment",
        "decision",
        "finished_at",
        "started_at",
        "error",
        "verdict",
        "inputs",
        "parcel_ref",
        "size_bytes",
        "path",
    ):
        op.drop_column("review", column)
