"""Dependencies shared by the routers: the reader connection and a collection by id (or 404)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy import Connection

from cim.db.features import COLLECTIONS, FeatureCollectionDef
from cim.errors import NotFoundError


def reader_connection(request: Request) -> Iterator[Connection]:
    """A connection of the app's engine for one request's reads (returned to the pool afterwards)."""
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


Reader = Annotated[Connection, Depends(reader_connection)]
"""A route parameter that receives the reader connection."""
Collection = Annotated[FeatureCollectionDef, Depends(collection_or_404)]
"""A route parameter that receives the collection named in the path."""
