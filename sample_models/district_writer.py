"""Writing generated layers: GeoPackage layers, a GBK Shapefile and the DEM GeoTIFF."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyogrio.raw
import rasterio
import shapely
from numpy.typing import NDArray
from rasterio.transform import from_origin


def write_layer(
    path: Path,
    layer: str | None,
    geoms: np.ndarray,
    fields: Mapping[str, Any],
    *,
    crs: str,
    geometry_type: str,
    driver: str = "GPKG",
    encoding: str | None = None,
) -> None:
    """Write one layer (geometries in ``crs`` metres, attribute columns as arrays) with GDAL's Arrow writer."""
    columns: dict[str, Any] = {name: pa.array(values) for name, values in fields.items()}
    columns["geometry"] = pa.array(shapely.to_wkb(geoms), type=pa.binary())
    pyogrio.raw.write_arrow(
        pa.table(columns),
        path,
        layer=layer,
        driver=driver,
        geometry_name="geometry",
        geometry_type=geometry_type,
        crs=crs,
        encoding=encoding,
        append=driver == "GPKG" and path.exists(),
    )


def write_dem(path: Path, heights: NDArray[np.float32], west: float, north: float, cell: float, crs: str) -> None:
    """A float32 GeoTIFF of normal heights (metres) with its north-west corner at ``west, north`` (metres)."""
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=heights.shape[1],
        height=heights.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=from_origin(west, north, cell, cell),
        nodata=-9999.0,
        compress="deflate",
        tiled=True,
    ) as dst:
        dst.write(heights.astype(np.float32), 1)
