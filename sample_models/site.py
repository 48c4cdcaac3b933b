"""Where the sample city lies: shared by the GIS district generator and the sample IFC models.

The sample district is a plausible piece of Wuhan (Hubei) in CGCS2000 / 3-degree Gauss–Krüger CM 114°E
(EPSG:4547). The IFC office stands on a parcel the district generator keeps free; the IFC bridge crosses
the district's river. Longitude/latitude in degrees (CGCS2000), heights in metres (1985 datum).
"""

from __future__ import annotations

DISTRICT_CRS = "EPSG:4547"
DISTRICT_BOUNDS = (114.280, 30.560, 114.330, 30.600)
"""The sample district's extent: (west, south, east, north), CGCS2000 degrees (about 4.8 km × 4.4 km)."""

OFFICE_SITE = (114.3050, 30.5850)
"""Lon/lat of the office model's project base point; the generator keeps a 120 m square free around it."""
OFFICE_CLEARANCE_M = 120.0
OFFICE_GROUND_HEIGHT = 24.0
"""Normal height of the office site's ground, metres."""

RIVER_LATITUDE = 30.5700
"""The sample river runs west–east along this latitude (about 80 m wide)."""
BRIDGE_SITE = (114.3150, 30.5700)
"""Lon/lat of the middle of the sample bridge, which spans the river north–south."""
