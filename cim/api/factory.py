"""Router factories (titiler's ``BaseFactory``): a router, a prefix, tags, ``register_routes()``, ``url_for``.

A factory builds its router with its ``prefix`` and ``tags``; its route names carry ``name_prefix``, so the
same endpoints can be mounted twice (``JobsFactory(prefix="/v2", name_prefix="v2_")``) or left out, and
:meth:`BaseFactory.url_for` finds this factory's own routes. Each factory documents itself through its
dataclass dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request

from cim.api.security import read_access


@dataclass
class BaseFactory:
    """Base of every router factory; subclasses implement :meth:`register_routes`."""

    prefix: str = ""
    """Path prefix of every route (``""``: mounted at the root)."""
    tags: list[str] = field(default_factory=list)
    """OpenAPI tags added to every route."""
    name_prefix: str = ""
    """Prefix of the route names (for :meth:`url_for`), so that two mounts do not clash."""
    dependencies: list[Any] = field(default_factory=list)
    """Dependencies (``Depends(...)``) run before every route, such as an access check."""
    router: APIRouter = field(init=False)

    def __post_init__(self) -> None:
        self.router = APIRouter(prefix=self.prefix, tags=list(self.tags), dependencies=list(self.dependencies))
        self.register_routes()

    def register_routes(self) -> None:
        """Add this factory's endpoints to :attr:`router` (named with :meth:`route_name`)."""
        raise NotImplementedError

    def route_name(self, name: str) -> str:
        """The route name under which this factory registers its endpoint ``name``."""
        return self.name_prefix + name

    def url_for(self, request: Request, name: str, **path_params: Any) -> str:
        """Absolute URL of this factory's route ``name`` (with its prefix and the proxy root path)."""
        return str(request.url_for(self.route_name(name), **path_params))


@dataclass
class ReadFactory(BaseFactory):
    """A factory of read endpoints: every route checks read access first (:func:`cim.api.security.read_access`)."""

    dependencies: list[Any] = field(default_factory=lambda: [Depends(read_access)])


@dataclass
class ViewerFactory(ReadFactory):
    """A factory of the viewer's read endpoints (tagged ``viewer``)."""

    tags: list[str] = field(default_factory=lambda: ["viewer"])
