"""``/tilesets`` and ``/datasets``: what the platform holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from cim.api.factory import BaseFactory
from cim.api.security import Principal, read_access
from cim.db.catalog import list_datasets, list_tilesets


@dataclass
class DatasetFilter:
    """Query parameters of ``/datasets``."""

    kind: Annotated[Literal["ifc", "vector", "raster"] | None, Query(description="Only datasets of this kind.")] = None
    status: Annotated[
        Literal["loading", "loaded", "superseded", "failed"] | None, Query(description="Only datasets in this state.")
    ] = None
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0


@dataclass
class CatalogFactory(BaseFactory):
    """Lists of tilesets and datasets."""

    def register_routes(self) -> None:
        """``GET /tilesets``, ``GET /datasets``."""

        @self.router.get("/tilesets", tags=["tiles"], summary="Built 3D Tiles tilesets with their bounds")
        async def get_tilesets(request: Request, _: Annotated[Principal, Depends(read_access)]) -> list[dict[str, Any]]:
            def query() -> list[dict[str, Any]]:
                with request.app.state.engine.connect() as conn:
                    return list_tilesets(conn, request.app.state.tiles.root)

            return await run_in_threadpool(query)

        @self.router.get("/datasets", tags=["datasets"], summary="Ingested sources (IFC, vector, raster), newest first")
        async def get_datasets(
            request: Request,
            params: Annotated[DatasetFilter, Depends()],
            _: Annotated[Principal, Depends(read_access)],
        ) -> dict[str, Any]:
            def query() -> tuple[int, list[dict[str, Any]]]:
                with request.app.state.engine.connect() as conn:
                    return list_datasets(
                        conn, kind=params.kind, status=params.status, limit=params.limit, offset=params.offset
                    )

            total, rows = await run_in_threadpool(query)
            return {"numberMatched": total, "numberReturned": len(rows), "datasets": rows}
