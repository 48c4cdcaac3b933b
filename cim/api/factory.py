"""Router factories (titiler style): a router, a prefix, ``register_routes()``, a prefix-aware ``url_for``.

The same endpoints can be mounted under another prefix or left out, and each factory documents itself
through its dataclass dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request


@dataclass
class BaseFactory:
    """Base of every router factory; subclasses implement :meth:`register_routes`."""

    prefix: str = ""
    router: APIRouter = field(default_factory=APIRouter)
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.register_routes()

    def register_routes(self) -> None:
        """Add this factory's endpoints to :attr:`router`."""
        raise NotImplementedError

    def url_for(self, request: Request, name: str, **path_params: Any) -> str:
        """Absolute URL of one of this factory's routes (honours the mount prefix and the proxy root path)."""
        return str(request.url_for(name, **path_params))
