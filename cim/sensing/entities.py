"""The SensorThings API 1.1 data model: entity types, their properties and navigation, mapped onto tables.

One table per entity type (``sta_*``, see :mod:`cim.db.models`); this module is the single map from the
standard's names (``phenomenonTime``, ``Datastream/Thing``) to columns, used by the query compiler, the
writer and the JSON renderer alike. Geometries are EPSG:4490 (lon/lat degrees), GeoJSON in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["id", "text", "json", "time", "interval", "geojson", "result", "number"]


@dataclass(frozen=True)
class Prop:
    """A property of an entity type: its STA name, column(s) and kind.

    ``interval`` properties have two columns (start, end); ``geojson`` properties keep the GeoJSON as given
    in ``column`` and its geometry in ``geom_column`` (what spatial filters use).
    """

    name: str
    column: str
    kind: Kind
    required: bool = False
    end_column: str | None = None
    geom_column: str | None = None
    writable: bool = True


@dataclass(frozen=True)
class Nav:
    """A navigation property.

    Exactly one way of joining: ``local_fk`` (a column of this table points at the target: to-one),
    ``remote_fk`` (a column of the target points at this row: to-many) or ``link`` (a link table with the
    column naming this row and the column naming the target: to-many).
    """

    name: str
    target: str
    many: bool
    local_fk: str | None = None
    remote_fk: str | None = None
    link: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class EntityType:
    """One SensorThings entity type and its table."""

    name: str
    set_name: str
    table: str
    props: tuple[Prop, ...]
    navs: tuple[Nav, ...]
    required_navs: tuple[str, ...] = field(default=())

    def prop(self, name: str) -> Prop | None:
        """The property called ``name`` (``id`` included), or None."""
        if name in ("id", "@iot.id"):
            return Prop("id", "id", "id", writable=False)
        return next((p for p in self.props if p.name == name), None)

    def nav(self, name: str) -> Nav | None:
        """The navigation property called ``name``, or None."""
        return next((n for n in self.navs if n.name == name), None)


def _named(*extra: Prop) -> tuple[Prop, ...]:
    """The properties of an entity type with a name, a description, ``extra`` and free ``properties``."""
    return (
        Prop("name", "name", "text", required=True),
        Prop("description", "description", "text"),
        *extra,
        Prop("properties", "properties", "json"),
    )


def _placed(geojson: str) -> tuple[Prop, ...]:
    """A Location's or FeatureOfInterest's properties: named, an encoding type and the GeoJSON property
    ``geojson`` (its geometry also in the ``geom`` column)."""
    return _named(
        Prop("encodingType", "encoding_type", "text", required=True),
        Prop(geojson, geojson, "geojson", required=True, geom_column="geom"),
    )


ENTITY_TYPES: tuple[EntityType, ...] = (
    EntityType(
        "Thing",
        "Things",
        "sta_thing",
        _named(),
        (
            Nav("Locations", "Location", True, link=("sta_thing_location", "thing_id", "location_id")),
            Nav("HistoricalLocations", "HistoricalLocation", True, remote_fk="thing_id"),
            Nav("Datastreams", "Datastream", True, remote_fk="thing_id"),
        ),
    ),
    EntityType(
        "Location",
        "Locations",
        "sta_location",
        _placed("location"),
        (
            Nav("Things", "Thing", True, link=("sta_thing_location", "location_id", "thing_id")),
            Nav(
                "HistoricalLocations",
                "HistoricalLocation",
                True,
                link=("sta_historical_location_location", "location_id", "historical_location_id"),
            ),
        ),
    ),
    EntityType(
        "HistoricalLocation",
        "HistoricalLocations",
        "sta_historical_location",
        (Prop("time", "time", "time", required=True),),
        (
            Nav("Thing", "Thing", False, local_fk="thing_id"),
            Nav(
                "Locations",
                "Location",
                True,
                link=("sta_historical_location_location", "historical_location_id", "location_id"),
            ),
        ),
        required_navs=("Thing",),
    ),
    EntityType(
        "Datastream",
        "Datastreams",
        "sta_datastream",
        _named(
            Prop("observationType", "observation_type", "text", required=True),
            Prop("unitOfMeasurement", "unit_of_measurement", "json", required=True),
            Prop(
                "phenomenonTime",
                "phenomenon_time_start",
                "interval",
                end_column="phenomenon_time_end",
                writable=False,
            ),
            Prop("resultTime", "result_time_start", "interval", end_column="result_time_end", writable=False),
        ),
        (
            Nav("Thing", "Thing", False, local_fk="thing_id"),
            Nav("Sensor", "Sensor", False, local_fk="sensor_id"),
            Nav("ObservedProperty", "ObservedProperty", False, local_fk="observed_property_id"),
            Nav("Observations", "Observation", True, remote_fk="datastream_id"),
        ),
        required_navs=("Thing", "Sensor", "ObservedProperty"),
    ),
    EntityType(
        "Sensor",
        "Sensors",
        "sta_sensor",
        _named(
            Prop("encodingType", "encoding_type", "text", required=True),
            Prop("metadata", "metadata", "text", required=True),
        ),
        (Nav("Datastreams", "Datastream", True, remote_fk="sensor_id"),),
    ),
    EntityType(
        "ObservedProperty",
        "ObservedProperties",
        "sta_observed_property",
        _named(Prop("definition", "definition", "text", required=True)),
        (Nav("Datastreams", "Datastream", True, remote_fk="observed_property_id"),),
    ),
    EntityType(
        "Observation",
        "Observations",
        "sta_observation",
        (
            Prop("phenomenonTime", "phenomenon_time", "interval", end_column="phenomenon_time_end"),
            Prop("resultTime", "result_time", "time"),
            Prop("result", "result", "result", required=True),
            Prop("resultQuality", "result_quality", "json"),
            Prop("validTime", "valid_time_start", "interval", end_column="valid_time_end"),
            Prop("parameters", "parameters", "json"),
        ),
        (
            Nav("Datastream", "Datastream", False, local_fk="datastream_id"),
            Nav("FeatureOfInterest", "FeatureOfInterest", False, local_fk="feature_of_interest_id"),
        ),
        required_navs=("Datastream",),
    ),
    EntityType(
        "FeatureOfInterest",
        "FeaturesOfInterest",
        "sta_feature_of_interest",
        _placed("feature"),
        (Nav("Observations", "Observation", True, remote_fk="feature_of_interest_id"),),
    ),
)

BY_NAME = {e.name: e for e in ENTITY_TYPES}
BY_SET = {e.set_name: e for e in ENTITY_TYPES}

OBSERVATION_TYPES = {
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement": "number",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation": "integer",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation": "boolean",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CategoryObservation": "string",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation": "object",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation": "any",
}
"""The O&M observation types and the JSON type of the results each accepts."""

CONFORMANCE = (
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-update-delete",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/data-array/data-array",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates",
)
