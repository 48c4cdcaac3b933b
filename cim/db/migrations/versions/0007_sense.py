"""Sensing throughput: room on every page of ``sta_datastream`` for HOT updates of the time extents

Every stored batch widens the phenomenon/result time extents of each of its datastreams (up to 5,000 rows a
batch). On full pages each such update writes a new row version elsewhere and new entries in all four
indexes of the table; with half of each page free (fillfactor 50, the table rewritten once) the new
version stays on its page and no index changes (a HOT update, as ``sta_latest`` has since 0006). On the
Data Array benchmark this halved PostgreSQL's CPU per stored observation.

Revision ID: 0007_sense
Revises: 0006_sensing_perf
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007_sense"
down_revision: str | Sequence[str] | None = "0006_sensing_perf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.execute("ALTER TABLE sta_datastream SET (fillfactor = 50)")
    op.execute("CLUSTER sta_datastream USING sta_datastream_pkey")  # rewrites the table: existing pages get the room


def downgrade() -> None:
    """Revert this revision."""
    op.execute("ALTER TABLE sta_datastream RESET (fillfactor)")
    op.execute("CLUSTER sta_datastream USING sta_datastream_pkey")
