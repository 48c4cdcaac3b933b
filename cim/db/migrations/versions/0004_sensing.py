"""IoT sensing: OGC SensorThings API 1.1 entities, observations partitioned by month (BRIN on phenomenon
time), the latest-value table, alarm rules and events, and the ``sensor`` API-key role

Revision ID: 0004_sensing
Revises: 0001
Create Date: 2026-12-01 17:12:59.929322
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cim.db.migrations import ddl

revision: str = "0004_sensing"
down_revision: str = "0003_archive"

SPATIAL_INDEXES = (("sta_location", "geom"), ("sta_feature_of_interest", "geom"), ("sensor_alarm", "geom"))
ROLES_BEFORE = "'viewer','planner','designer','reviewer','archivist','admin'"
ROLES_WITH_SENSOR = ROLES_BEFORE + ",'sensor'"


def _name_and_description() -> list[sa.Column]:
    """The ``name`` and ``description`` every SensorThings entity has (a missing description is "")."""
    return [*ddl.required(name=sa.Text()), sa.Column("description", sa.Text(), server_default="", nullable=False)]


def _create_link_table(table: str, first: tuple[str, str], second: tuple[str, str]) -> None:
    """A many-to-many table: two cascading (column, referenced table) keys, both the primary key, the second indexed."""
    op.create_table(
        table,
        *ddl.required(**{first[0]: sa.BigInteger(), second[0]: sa.BigInteger()}),
        *(ddl.fk(column, parent, "CASCADE") for column, parent in sorted((first, second))),
        sa.PrimaryKeyConstraint(first[0], second[0]),
    )
    ddl.create_indexes(table, second[0])


def upgrade() -> None:
    """Apply this revision."""
    ddl.create_table(
        "sta_location",
        *_name_and_description(),
        *ddl.required(encoding_type=sa.Text()),
        *ddl.json_required("location"),
        ddl.geometry("geom"),
        *ddl.json_optional("properties"),
    )
    ddl.create_table(
        "sta_observed_property",
        *ddl.required(name=sa.Text(), definition=sa.Text()),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        *ddl.json_optional("properties"),
    )
    ddl.create_table(
        "sta_sensor",
        *_name_and_description(),
        *ddl.required(encoding_type=sa.Text(), metadata=sa.Text()),
        *ddl.json_optional("properties"),
    )
    ddl.create_table(
        "sta_feature_of_interest",
        *_name_and_description(),
        *ddl.required(encoding_type=sa.Text()),
        *ddl.json_required("feature"),
        ddl.geometry("geom"),
        *ddl.json_optional("properties"),
        *ddl.optional(location_id=sa.BigInteger()),
        ddl.fk("location_id", "sta_location", "SET NULL"),
        sa.UniqueConstraint("location_id"),
    )
    ddl.create_table(
        "sta_thing",
        *_name_and_description(),
        *ddl.json_optional("properties"),
        *ddl.optional(building_id=sa.BigInteger(), facility_id=sa.BigInteger()),
        ddl.fk("building_id", "building", "SET NULL"),
        ddl.fk("facility_id", "facility", "SET NULL"),
        indexes=("building_id", "facility_id"),
    )
    ddl.create_table(
        "sta_datastream",
        *_name_and_description(),
        *ddl.required(observation_type=sa.Text()),
        *ddl.json_required("unit_of_measurement"),
        *ddl.json_optional("properties"),
        *ddl.moments("phenomenon_time_start", "phenomenon_time_end", "result_time_start", "result_time_end"),
        *ddl.optional(retention_days=sa.Integer()),
        *ddl.required(thing_id=sa.BigInteger(), sensor_id=sa.BigInteger(), observed_property_id=sa.BigInteger()),
        sa.CheckConstraint("retention_days IS NULL OR retention_days > 0", name="sta_datastream_retention"),
        ddl.fk("observed_property_id", "sta_observed_property", "CASCADE"),
        ddl.fk("sensor_id", "sta_sensor", "CASCADE"),
        ddl.fk("thing_id", "sta_thing", "CASCADE"),
        indexes=("observed_property_id", "sensor_id", "thing_id"),
    )
    ddl.create_table(
        "sta_historical_location",
        ddl.created("time"),
        *ddl.required(thing_id=sa.BigInteger()),
        ddl.fk("thing_id", "sta_thing", "CASCADE"),
        indexes=("thing_id",),
    )
    _create_link_table("sta_thing_location", ("thing_id", "sta_thing"), ("location_id", "sta_location"))
    ddl.create_table(
        "sensor_alarm_rule",
        *ddl.required(name=sa.Text(), kind=sa.String(length=16)),
        *ddl.optional(threshold=sa.Float(), minutes=sa.Float()),
        sa.Column("severity", sa.String(length=16), server_default="warning", nullable=False),
        *ddl.optional(datastream_id=sa.BigInteger(), observed_property_id=sa.BigInteger()),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        ddl.created(),
        sa.CheckConstraint("kind IN ('over','under','rate','nodata')", name="sensor_alarm_rule_kind"),
        sa.CheckConstraint("severity IN ('info','warning','critical')", name="sensor_alarm_rule_severity"),
        sa.CheckConstraint(
            "(datastream_id IS NULL) <> (observed_property_id IS NULL)", name="sensor_alarm_rule_target"
        ),
        ddl.fk("datastream_id", "sta_datastream", "CASCADE"),
        ddl.fk("observed_property_id", "sta_observed_property", "CASCADE"),
        indexes=("datastream_id", "observed_property_id"),
    )
    _create_link_table(
        "sta_historical_location_location",
        ("historical_location_id", "sta_historical_location"),
        ("location_id", "sta_location"),
    )
    op.create_table(
        "sta_latest",
        *ddl.required(datastream_id=sa.BigInteger(), observation_id=sa.BigInteger()),
        *ddl.required(phenomenon_time=sa.DateTime(timezone=True)),
        *ddl.json_optional("result"),
        *ddl.optional(result_number=sa.Float()),
        ddl.created("received_at"),
        ddl.fk("datastream_id", "sta_datastream", "CASCADE"),
        sa.PrimaryKeyConstraint("datastream_id"),
    )
    op.execute("CREATE SEQUENCE sta_observation_id_seq AS bigint")
    op.create_table(
        "sta_observation",
        sa.Column(
            "id",
            sa.BigInteger(),
            server_default=sa.text("nextval('sta_observation_id_seq')"),
            autoincrement=False,
            nullable=False,
        ),
        *ddl.required(phenomenon_time=sa.DateTime(timezone=True)),
        *ddl.moments("phenomenon_time_end", "result_time"),
        *ddl.json_optional("result"),
        *ddl.optional(result_number=sa.Float()),
        *ddl.json_optional("result_quality"),
        *ddl.moments("valid_time_start", "valid_time_end"),
        *ddl.json_optional("parameters"),
        *ddl.required(datastream_id=sa.BigInteger(), feature_of_interest_id=sa.BigInteger()),
        ddl.fk("datastream_id", "sta_datastream", "CASCADE"),
        ddl.fk("feature_of_interest_id", "sta_feature_of_interest", "CASCADE"),
        sa.PrimaryKeyConstraint("id", "phenomenon_time"),
        sa.UniqueConstraint("datastream_id", "phenomenon_time", name="sta_observation_datastream_time"),
        postgresql_partition_by="RANGE (phenomenon_time)",
    )
    op.create_index("sta_observation_foi", "sta_observation", ["feature_of_interest_id"], unique=False)
    op.create_index(
        "sta_observation_phenomenon_time_brin",
        "sta_observation",
        ["phenomenon_time"],
        unique=False,
        postgresql_using="brin",
    )
    ddl.create_table(
        "sensor_alarm",
        *ddl.required(rule_id=sa.BigInteger(), datastream_id=sa.BigInteger()),
        *ddl.required(kind=sa.String(length=16), severity=sa.String(length=16)),
        *ddl.optional(value=sa.Float(), threshold=sa.Float()),
        *ddl.required(message=sa.Text()),
        ddl.geometry("geom"),
        ddl.jsonb("details"),
        ddl.created("raised_at"),
        *ddl.moments("cleared_at"),
        *ddl.optional(facility_id=sa.BigInteger()),
        ddl.fk("datastream_id", "sta_datastream", "CASCADE"),
        ddl.fk("facility_id", "facility", "SET NULL"),
        ddl.fk("rule_id", "sensor_alarm_rule", "CASCADE"),
        indexes=("datastream_id", "rule_id"),
    )
    ddl.create_gist_indexes(SPATIAL_INDEXES)
    # Months around the migration date; the platform creates later (and older) months as data needs them.
    op.execute(
        """
        DO $$
        DECLARE m date;
        BEGIN
          FOR i IN -1..3 LOOP
            m := (date_trunc('month', now()) + make_interval(months => i))::date;
            EXECUTE format(
              'CREATE TABLE IF NOT EXISTS %I PARTITION OF sta_observation FOR VALUES FROM (%L) TO (%L)',
              'sta_observation_' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date);
          END LOOP;
        END $$
        """
    )
    op.execute("ALTER TABLE api_key DROP CONSTRAINT api_key_role")
    op.execute(f"ALTER TABLE api_key ADD CONSTRAINT api_key_role CHECK (role IN ({ROLES_WITH_SENSOR}))")


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DELETE FROM api_key WHERE role = 'sensor'")
    op.execute("ALTER TABLE api_key DROP CONSTRAINT api_key_role")
    op.execute(f"ALTER TABLE api_key ADD CONSTRAINT api_key_role CHECK (role IN ({ROLES_BEFORE}))")
    ddl.drop_table("sensor_alarm", "rule_id", "datastream_id", spatial=True)
    op.drop_index("sta_observation_phenomenon_time_brin", table_name="sta_observation", postgresql_using="brin")
    op.drop_index("sta_observation_foi", table_name="sta_observation")
    op.drop_table("sta_observation")
    op.execute("DROP SEQUENCE IF EXISTS sta_observation_id_seq")
    op.drop_table("sta_latest")
    ddl.drop_table("sta_historical_location_location", "location_id")
    ddl.drop_table("sensor_alarm_rule", "observed_property_id", "datastream_id")
    ddl.drop_table("sta_thing_location", "location_id")
    ddl.drop_table("sta_historical_location", "thing_id")
    ddl.drop_table("sta_datastream", "thing_id", "sensor_id", "observed_property_id")
    ddl.drop_table("sta_thing", "facility_id", "building_id")
    ddl.drop_table("sta_feature_of_interest", spatial=True)
    op.drop_table("sta_sensor")
    op.drop_table("sta_observed_property")
    ddl.drop_table("sta_location", spatial=True)
