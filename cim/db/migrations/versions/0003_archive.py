"""Archive: model_version grows (OCFL object, sha512/SM3 digests, review, tombstones), archived objects,
the SM3 hash-chained ledger with its audit-log queue (filled by a trigger) and daily Merkle roots.

Revision ID: 0003_archive
Revises: 0001
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_archive"
down_revision: str | Sequence[str] | None = "0002_review"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NULLABLE = (
    ("file_name", sa.Text()),
    ("storage_key", sa.Text()),
    ("sha256", sa.String(length=64)),
    ("size_bytes", sa.BigInteger()),
)


def upgrade() -> None:
    """Apply this revision."""
    for name, type_ in _NULLABLE:  # a tombstone has no file
        op.alter_column("model_version", name, existing_type=type_, nullable=True)
    op.add_column("model_version", sa.Column("kind", sa.String(length=16), server_default="version", nullable=False))
    op.add_column("model_version", sa.Column("object_id", sa.Text(), nullable=True))
    op.add_column("model_version", sa.Column("sha512", sa.String(length=128), nullable=True))
    op.add_column("model_version", sa.Column("sm3", sa.String(length=64), nullable=True))
    op.add_column("model_version", sa.Column("media_type", sa.String(length=64), nullable=True))
    op.add_column("model_version", sa.Column("review_id", sa.BigInteger(), nullable=True))
    op.add_column("model_version", sa.Column("reason", sa.Text(), nullable=True))
    op.add_column("model_version", sa.Column("ledger_seq", sa.BigInteger(), nullable=True))
    op.create_foreign_key(None, "model_version", "review", ["review_id"], ["id"], ondelete="SET NULL")
    op.create_index(op.f("ix_model_version_review_id"), "model_version", ["review_id"], unique=False)
    op.create_check_constraint("model_version_kind", "model_version", "kind IN ('version','tombstone')")

    op.create_table(
        "archive_object",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("model_key", sa.Text(), nullable=False),
        sa.Column("object_id", sa.Text(), nullable=False),
        sa.Column("object_path", sa.Text(), nullable=False),
        sa.Column("head_version", sa.Integer(), server_default="0", nullable=False),
        sa.Column("building_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["building_id"], ["building.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("model_key"),
        sa.UniqueConstraint("object_id"),
    )
    op.create_index(op.f("ix_archive_object_building_id"), "archive_object", ["building_id"], unique=False)
    op.create_table(
        "archive_ledger",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("model_key", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("audit_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("kind IN ('put','get','delete','decision','audit')", name="archive_ledger_kind"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("audit_id"),
        sa.UniqueConstraint("entry_hash"),
    )
    op.create_index(op.f("ix_archive_ledger_day"), "archive_ledger", ["day"], unique=False)
    op.create_index(op.f("ix_archive_ledger_model_key"), "archive_ledger", ["model_key"], unique=False)
    op.create_table(
        "archive_ledger_queue",
        sa.Column("audit_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    op.create_table(
        "archive_ledger_root",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("root", sa.String(length=64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    # Every audit-log row is queued in the same transaction that writes it; the archive's sealer chains
    # queued rows into the ledger in order (so security.py needs no change and no row escapes the chain).
    op.execute(
        """
        CREATE FUNCTION archive_queue_audit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO archive_ledger_queue (audit_id) VALUES (NEW.id);
            RETURN NEW;
        END $$;
        CREATE TRIGGER audit_log_to_ledger AFTER INSERT ON audit_log
            FOR EACH ROW EXECUTE FUNCTION archive_queue_audit();
        CREATE FUNCTION archive_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'archive_ledger is append-only (% refused)', TG_OP;
        END $$;
        CREATE TRIGGER archive_ledger_append_only BEFORE UPDATE OR DELETE ON archive_ledger
            FOR EACH ROW EXECUTE FUNCTION archive_ledger_append_only();
        CREATE TRIGGER archive_ledger_no_truncate BEFORE TRUNCATE ON archive_ledger
            FOR EACH STATEMENT EXECUTE FUNCTION archive_ledger_append_only();
        """
    )


def downgrade() -> None:
    """Revert this revision."""
    op.execute(
        """
        DROP TRIGGER IF EXISTS audit_log_to_ledger ON audit_log;
        DROP FUNCTION IF EXISTS archive_queue_audit();
        DROP TABLE IF EXISTS archive_ledger;
        DROP FUNCTION IF EXISTS archive_ledger_append_only();
        """
    )
    op.drop_table("archive_ledger_root")
    op.drop_table("archive_ledger_queue")
    op.drop_index(op.f("ix_archive_object_building_id"), table_name="archive_object")
    op.drop_table("archive_object")
    op.drop_constraint("model_version_kind", "model_version", type_="check")
    op.drop_index(op.f("ix_model_version_review_id"), table_name="model_version")
    op.drop_constraint("model_version_review_id_fkey", "model_version", type_="foreignkey")
    for name in ("ledger_seq", "reason", "review_id", "media_type", "sm3", "sha512", "object_id", "kind"):
        op.drop_column("model_version", name)
    for name, type_ in _NULLABLE:
        op.alter_column("model_version", name, existing_type=type_, nullable=False)
