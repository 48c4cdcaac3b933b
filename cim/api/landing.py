"""The landing page ``/`` (OGC API – Common): what the service is and links to its parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from cim.api.factory import BaseFactory
from cim.api.features import FEATURES_TAG
from cim.api.security import Principal, read_access


def _link(href: str, rel: str, type_: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": type_, "title": title}


@dataclass
class LandingFactory(BaseFactory):
    """``GET /``: title, description and links to the API definition, docs, conformance and collections.

    ``features_name_prefix`` is the ``name_prefix`` of the :class:`~cim.api.features.FeaturesFactory` it links to.
    """

    tags: list[str] = field(default_factory=lambda: [FEATURES_TAG])
    features_name_prefix: str = ""

    def register_routes(self) -> None:
        """``GET /``."""

        @self.router.get("/", summary="Landing page", name=self.route_name("landing_page"))
        def landing_page(request: Request, _: Annotated[Principal, Depends(read_access)]) -> dict[str, Any]:
            features = self.features_name_prefix
            return {
                "title": "CIM platform",
                "description": "3D CIM platform: buildings, IFC elements, municipal facilities, parcels, planning "
                "zones, districts and analysis results under CGCS2000; 3D Tiles at /tilesets.",
                "links": [
                    _link(self.url_for(request, "landing_page"), "self", "application/json", "This document"),
                    _link(
                        str(request.url_for("openapi")),
                        "service-desc",
                        "application/vnd.oai.openapi+json;version=3.0",
                        "The API definition",
                    ),
                    _link(str(request.base_url) + "docs", "service-doc", "text/html", "The API documentation"),
                    _link(
                        str(request.url_for(features + "conformance")),
                        "conformance",
                        "application/json",
                        "Conformance classes",
                    ),
                    _link(
                        str(request.url_for(features + "get_collections")), "data", "application/json", "Collections"
                    ),
                ],
            }
