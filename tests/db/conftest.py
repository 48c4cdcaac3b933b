"""What the database tests share: a private PostgreSQL cluster of a test's own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cim.db.cluster import PrivateCluster
from cim.errors import DatabaseError


@contextlib.contextmanager
def own_cluster(data_dir: Path) -> Iterator[PrivateCluster]:
    """A :class:`PrivateCluster` in ``data_dir``, stopped after the ``with`` block (if it runs)."""
    cluster = PrivateCluster(data_dir)
    try:
        yield cluster
    finally:
        with contextlib.suppress(DatabaseError):
            cluster.down()
