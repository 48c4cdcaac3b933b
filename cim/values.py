"""Small value types shared by the API, the command line and jobs: bounding boxes and tileset names.

One parser each, so that what the API accepts, the command line accepts and a job can carry out agree.
Parsers raise :class:`ValueError` with a message for the user; each entry point turns it into its own
refusal (HTTP 400, a usage error, a validation error).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

TILESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A tileset name: a letter or digit, then up to 63 letters, digits, ``_``, ``.`` or ``-`` (also a folder name)."""
TILESET_NAME_RULE = "letters, digits, '_', '-' or '.', starting with a letter or digit (≤ 64 characters)"


def check_tileset_name(name: str) -> str:
    """``name`` when it is a valid tileset name (:data:`TILESET_NAME`); else :class:`ValueError`."""
    if not TILESET_NAME.match(name):
        raise ValueError(f"tileset name {name!r} is invalid: use {TILESET_NAME_RULE}")
    return name


class BBox(NamedTuple):
    """A bounding box ``(west, south, east, north)``: x/y order (longitude/latitude degrees in CRS84 or CGCS2000).

    >>> BBox.parse("114.2,30.5,114.4,30.7")
    BBox(west=114.2, south=30.5, east=114.4, north=30.7)
    """

    west: float
    south: float
    east: float
    north: float

    @classmethod
    def parse(
        cls, value: str | Sequence[float], *, degrees: bool = True, yx: bool = False, west_of_east: bool = False
    ) -> BBox:
        """A box from ``"W,S,E,N"`` text or four numbers (six: ``W,S,minZ,E,N,maxZ``, heights dropped).

        ``yx``: the numbers come in the CRS's y/x axis order (``S,W,N,E``, as EPSG:4490 lat/lon) and are
        returned in x/y order. ``degrees``: longitudes within ±180 and latitudes within ±90. South must not
        exceed north; with ``west_of_east`` west must be less than east too (no antimeridian crossing).
        """
        if isinstance(value, str):
            try:
                numbers = [float(v) for v in value.split(",")]
            except ValueError:
                raise ValueError(f"a bbox is four numbers separated by commas (W,S,E,N), not {value!r}") from None
        else:
            numbers = [float(v) for v in value]
        if len(numbers) == 6:
            numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
        if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
            raise ValueError(f"a bbox is four (or six) finite numbers W,S,E,N, not {value!r}")
        box = cls(*numbers).swapped() if yx else cls(*numbers)
        if degrees and not (
            -180 <= box.west <= 180 and -180 <= box.east <= 180 and -90 <= box.south <= 90 and -90 <= box.north <= 90
        ):
            raise ValueError("a bbox in degrees has longitudes within −180…180 and latitudes within −90…90")
        if box.south > box.north:
            raise ValueError("bbox: the lower corner must not lie north of the upper corner")
        if west_of_east and not (box.west < box.east and box.south < box.north):
            raise ValueError("bbox must be west < east and south < north")
        return box

    def swapped(self) -> BBox:
        """The same numbers read in the other axis order (lat/lon ↔ lon/lat)."""
        return BBox(self.south, self.west, self.north, self.east)
