"""What the database tests share: a private PostgreSQL cluster of a test's own."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from cim.db.cluster import PrivateCluster
from cim.errors import DatabaseError


@contextlib.contextmanager
def own_cluster(data_dir: Path) -> Iterator[PrivateCluster]:
    """A :class:`PrivateCluster` in ``data_dir``, stopped after the ``with`` block (if it runs).

    As root its files may live outside ``data_dir`` (``/var/lib/cim``, where ``postgres`` can reach them):
    they are removed too, so that a later run whose temporary folder has the same path starts afresh.
    """
    cluster = PrivateCluster(data_dir)
    try:
        yield cluster
    finally:
        with contextlib.suppress(DatabaseError):
            cluster.down()
        with contextlib.suppress(DatabaseError):
            pgdata = cluster.status().pgdata
            if pgdata and not Path(pgdata).is_relative_to(cluster.data_dir):
                shutil.rmtree(pgdata, ignore_errors=True)
