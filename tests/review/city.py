"""The test city of the review: one parcel, three stored buildings and a water pipe, all placed in model
coordinates of :mod:`tests.review.models` (metres east/north of E0/N0 in EPSG:4547), so expected answers
are plain arithmetic.

    parcel P-1           x 0…100, y 0…80 (8,000 m²): height ≤ 24 m, FAR ≤ 2.0, density ≤ 30 %,
                         green ≥ 30 %, setback 5 m
    shed (office)        x 10…20, y 10…25, 10 m high       (overlaps the failing model)
    hall (office)        x 68…88, y 30…50, 10 m high       (5 m east of the failing model)
    flats (residential)  x 13…53, y 75…85, 18 m high       (10 m north of the failing model)
    water main d300      y = 17, x 0…100                    (GB 50289: 3.0 m from a building)
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import shapely
from sqlalchemy import Engine

from tests import factories
from tests.review.models import H0, rect, to_lonlat

PARCEL = to_lonlat(rect(0, 0, 100, 80))
"""Parcel P-1's outline (lon/lat)."""
PARCEL_LIMITS: dict[str, object] = {
    "code": "P-1",
    "max_height": 24.0,
    "max_far": 2.0,
    "max_density": 0.30,
    "min_green_ratio": 0.30,
    "setback_m": 5.0,
}
"""Parcel P-1's code and planning limits."""


@dataclass
class City:
    """Ids of the stored rows."""

    parcel: int
    shed: int
    hall: int
    flats: int
    pipe: int


@pytest.fixture
def city(engine: Engine) -> City:
    """The test city in this test's database."""
    with engine.begin() as conn:
        ds = factories.dataset(conn, "review-city")
        parcel = factories.parcel(conn, ds, PARCEL, name="评审测试地块", land_use="B2", **PARCEL_LIMITS)
        shed = factories.building(
            conn, ds, to_lonlat(rect(10, 10, 20, 25)), height=10.0, base_height=H0, name="仓库", use="office"
        )
        hall = factories.building(
            conn, ds, to_lonlat(rect(68, 30, 88, 50)), height=10.0, base_height=H0, name="展厅", use="office"
        )
        flats = factories.building(
            conn, ds, to_lonlat(rect(13, 75, 53, 85)), height=18.0, base_height=H0, name="住宅楼", use="residential"
        )
        pipe = factories.facility(
            conn,
            ds,
            "pipe_water",
            to_lonlat(shapely.LineString([(0, 17), (100, 17)])),
            diameter_mm=300.0,
            name="给水干管",
        )
    return City(parcel, shed, hall, flats, pipe)
