"""``/tilesets``, ``/datasets`` and ``/formats``: what the platform holds and what it can ingest."""

# No ``from __future__ import annotations``: the ``kind`` parameter's enum is built from the format registry
# when the routes are registered, and FastAPI reads the annotation from the function itself.
import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from cim.api.factory import BaseFactory
from cim.api.security import Principal, read_access
from cim.db.catalog import list_datasets, list_tilesets
from ingest import formats


@dataclass
class DatasetFilter:
    """Query parameters of ``/datasets``."""

    status: Annotated[
        Literal["loading", "loaded", "superseded", "failed"] | None, Query(description="Only datasets in this state.")
    ] = None
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")] = 0


@dataclass
class CatalogFactory(BaseFactory):
    """Lists of tilesets and datasets."""

    def register_routes(self) -> None:
        """``GET /tilesets``, ``GET /datasets``, ``GET /formats``."""
        source_kind = enum.Enum("SourceKind", {n: n for n in formats.names()}, type=str)  # type: ignore[misc]

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
            kind: Annotated[source_kind | None, Query(description="Only datasets of this source format.")] = None,
        ) -> dict[str, Any]:
            def query() -> tuple[int, list[dict[str, Any]]]:
                with request.app.state.engine.connect() as conn:
                    return list_datasets(
                        conn,
                        kind=kind.value if kind is not None else None,
                        status=params.status,
                        limit=params.limit,
                        offset=params.offset,
                    )

            total, rows = await run_in_threadpool(query)
            return {"numberMatched": total, "numberReturned": len(rows), "datasets": rows}

        @self.router.get("/formats", tags=["datasets"], summary="Source formats the platform ingests (upload kinds)")
        def get_formats(_: Annotated[Principal, Depends(read_access)]) -> list[dict[str, Any]]:
            return [fmt.describe() for fmt in formats.registered()]
