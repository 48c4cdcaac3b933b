"""Archive: model_version grows (OCFL object, sha512/SM3 digests, review, tombstones), archived objects,
the SM3 hash-chained ledger with its audit-log queue (filled by a trigger) and daily Merkle roots.

Revision ID: 0003_archive
Revises: 0001
Create Date: 2026-12-01 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cim.db.migrations import ddl

revision: str = "0003_archive"
down_revision: str = "0002_review"

_NULLABLE = (
    ("file_name", sa.Text()),
    ("storage_key", sa.Text()),
    ("sha256", sa.String(length=64)),
    ("size_bytes", sa.BigInteger()),
)


def _new_columns() -> list[sa.Column]:
    """The columns this revision adds to ``model_version``, in order (new objects on every call)."""
    return [
        sa.Column("kind", sa.String(length=16), server_default="version", nullable=False),
        *ddl.optional(object_id=sa.Text(), sha512=sa.String(length=128), sm3=sa.String(length=64)),
        *ddl.optional(media_type=sa.String(length=64), review_id=sa.BigInteger(), reason=sa.Text()),
        *ddl.optional(ledger_seq=sa.BigInteger()),
    ]


def upgrade() -> None:
    """Apply this revision."""
    for name, type_ in _NULLABLE:  # a tombstone has no file
        op.alter_column("model_version", name, existing_type=type_, nullable=True)
    for column in _new_columns():
        op.add_column("model_version", column)
    op.create_foreign_key(None, "model_version", "review", ["review_id"], ["id"], ondelete="SET NULL")
    ddl.create_indexes("model_version", "review_id")
    op.create_check_constraint("model_version_kind", "model_version", "kind IN ('version','tombstone')")

    ddl.create_table(
        "archive_object",
        *ddl.required(model_key=sa.Text(), object_id=sa.Text(), object_path=sa.Text()),
        sa.Column("head_version", sa.Integer(), server_default="0", nullable=False),
        *ddl.optional(building_id=sa.BigInteger()),
        ddl.created(),
        *ddl.moments("deleted_at"),
        ddl.fk("building_id", "building", "SET NULL"),
        sa.UniqueConstraint("model_key"),
        sa.UniqueConstraint("object_id"),
        indexes=("building_id",),
    )
    op.create_table(
        "archive_ledger",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        *ddl.required(at=sa.DateTime(timezone=True), day=sa.Date(), kind=sa.String(length=16)),
        *ddl.optional(model_key=sa.Text(), version=sa.Integer(), audit_id=sa.BigInteger()),
        ddl.jsonb("payload"),
        *ddl.required(prev_hash=sa.String(length=64), entry_hash=sa.String(length=64)),
        sa.CheckConstraint("kind IN ('put','get','delete','decision','audit')", name="archive_ledger_kind"),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("audit_id"),
        sa.UniqueConstraint("entry_hash"),
    )
    ddl.create_indexes("archive_ledger", "day", "model_key")
    op.create_table(
        "archive_ledger_queue",
        sa.Column("audit_id", sa.BigInteger(), autoincrement=False, nullable=False),
        ddl.created("queued_at"),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    op.create_table(
        "archive_ledger_root",
        *ddl.required(day=sa.Date(), root=sa.String(length=64), entries=sa.Integer()),
        *ddl.required(first_seq=sa.BigInteger(), last_seq=sa.BigInteger()),
        ddl.created("computed_at"),
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
    ddl.drop_table("archive_object", "building_id")
    op.drop_constraint("model_version_kind", "model_version", type_="check")
    ddl.drop_indexes("model_version", "review_id")
    op.drop_constraint("model_version_review_id_fkey", "model_version", type_="foreignkey")
    for column in reversed(_new_columns()):
        op.drop_column("model_version", column.name)
    for name, type_ in _NULLABLE:
        op.alter_column("model_version", name, existing_type=type_, nullable=False)
