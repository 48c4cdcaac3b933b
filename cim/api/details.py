"""Detail endpoints: ``/buildings/{id}``, ``/elements/{guid}``, ``/search``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Path, Query

from cim.api.dependencies import Reader
from cim.api.factory import ReadFactory
from cim.db.details import building_detail, element_detail, search
from cim.errors import NotFoundError


@dataclass
class SearchParams:
    """Query parameters of ``/search``."""

    q: Annotated[str, Query(min_length=1, max_length=200, description="Building id, name, address or IFC GlobalId.")]
    limit: Annotated[int, Query(ge=1, le=100, description="Most results.")] = 10


def _found(detail: dict[str, Any] | None, missing: str) -> dict[str, Any]:
    if detail is None:
        raise NotFoundError(missing)
    return detail


@dataclass
class DetailsFactory(ReadFactory):
    """Buildings, elements and search for the viewer's info panel."""

    tags: list[str] = field(default_factory=lambda: ["details"])

    def register_routes(self) -> None:
        """``GET /buildings/{id}``, ``GET /elements/{guid}``, ``GET /search``."""

        @self.router.get("/buildings/{building_id}", summary="A building with its history")
        def get_building(
            building_id: Annotated[int, Path(ge=1, le=2**62, description="building.id")],
            conn: Reader,
        ) -> dict[str, Any]:
            return _found(building_detail(conn, building_id), f"no building with id {building_id}")

        @self.router.get("/elements/{global_id}", summary="An IFC element and its properties")
        def get_element(
            global_id: Annotated[str, Path(min_length=1, max_length=64, description="IFC GlobalId (22 chars).")],
            conn: Reader,
        ) -> dict[str, Any]:
            return _found(element_detail(conn, global_id), f"no live element with GlobalId {global_id!r}")

        @self.router.get("/search", summary="Find buildings and elements")
        def get_search(params: Annotated[SearchParams, Depends()], conn: Reader) -> list[dict[str, Any]]:
            return search(conn, params.q.strip() or params.q, params.limit)
