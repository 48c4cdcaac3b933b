"""A small two-district city for the one-map endpoints' tests: named roads, parcels, water, buildings."""

from __future__ import annotations

import shapely
from sqlalchemy import Engine

from tests import factories

WEST, SOUTH = 114.300, 30.580
JIANGAN = shapely.box(114.300, 30.580, 114.310, 30.590)
JIANGHAN = shapely.box(114.290, 30.580, 114.300, 30.590)


BUILDINGS: list[tuple[str, float, float, dict[str, object]]] = [
    ("tower", 114.305, 30.585, {"height": 80.0, "name": "江岸大厦", "use": "office", "district_code": "420102"}),
    # No district code: counted by where they stand.
    ("shop", 114.295, 30.585, {"height": 9.0, "name": "汉正商场"}),
    ("shed", 114.296, 30.586, {"height": 4.0}),
]
"""The buildings: key in the returned ids, south-west corner (lon, lat) of the default square, columns."""


def seed_city(engine: Engine) -> dict[str, int]:
    """Districts 江岸区 and 江汉区 (no city row: Wuhan is implied by their codes) and what stands in them."""
    with engine.begin() as conn:
        factories.district(conn, "420102", JIANGAN, 100_000, name="江岸区")
        factories.district(conn, "420103", JIANGHAN, 90_000, name="江汉区")
        ds = factories.dataset(conn, "onemap-city")
        ids = {
            key: factories.building(conn, ds, factories.square(lon, lat), **values)
            for key, lon, lat, values in BUILDINGS
        }
        factories.facility(
            conn,
            ds,
            "road",
            shapely.LineString([(114.291, 30.5852), (114.309, 30.5852)]),
            name="解放大道",
            road_class="primary",
            width_m=30.0,
            attributes={"name_en": "Jiefang Avenue"},
        )
        factories.facility(conn, ds, "road", shapely.LineString([(114.302, 30.581), (114.302, 30.589)]), name="江汉路")
        factories.facility(conn, ds, "water_body", shapely.box(114.306, 30.581, 114.309, 30.583), name="西北湖")
        factories.facility(conn, ds, "park", shapely.box(114.292, 30.581, 114.295, 30.583), name="中山公园")
        factories.parcel(conn, ds, shapely.box(114.300, 30.584, 114.310, 30.590), code="JA-01", land_use="R2")
    return ids
