"""Dependencies shared by the routers: the reader connection, a collection by id (or 404), primary reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Connection

from cim.db.features import COLLECTIONS, FeatureCollectionDef
from cim.db.routing import CURRENT_ROUTE
from cim.errors import NotFoundError


def reader_connection(request: Request) -> Iterator[Connection]:
    """A connection of the app's engine for one request's reads (returned to the pool afterwards).

    With a read replica (``cim serve --read-replica``) a GET's connection is the standby's when it can serve
    the read (:mod:`cim.db.routing`).
    """
    with request.app.state.engine.connect() as conn:
        yield conn


def collection_or_404(
    collectionId: Annotated[str, Path(description="Collection id, e.g. buildings.")],
) -> FeatureCollectionDef:
    """The published collection ``collectionId``; :class:`~cim.errors.NotFoundError` (404) when there is none."""
    coll = COLLECTIONS.get(collectionId)
    if coll is None:
        raise NotFoundError(f"no collection {collectionId!r}; see /collections")
    return coll


async def reads_from_primary() -> None:
    """Send this request's reads to the primary (routes whose rows background work keeps changing: jobs).

    Async on purpose: it runs in the request's task, before the endpoint, so the route it changes is the
    one the endpoint's threads see.
    """
    route = CURRENT_ROUTE.get()
    if route is not None:
        route.replica_allowed = False


ReadsFromPrimary = Depends(reads_from_primary)
"""Include a router with ``dependencies=[ReadsFromPrimary]`` to keep its reads off the read replica."""
Reader = Annotated[Connection, Depends(reader_connection)]
"""A route parameter that receives the reader connection."""
Collection = Annotated[FeatureCollectionDef, Depends(collection_or_404)]
"""A route parameter that receives the collection named in the path."""
