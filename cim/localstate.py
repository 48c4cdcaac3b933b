"""What the platform's private services (its PostgreSQL cluster, its MQTT broker) keep in their folders.

One lock file per service, so that concurrent ``up``/``down`` calls take turns, and one JSON state file,
replaced atomically so that a crash never leaves half of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created with its folder when missing) for the block."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json_state(path: Path) -> dict[str, Any] | None:
    """The state saved at ``path``, or ``None`` when there is none; :class:`ValueError` when unreadable."""
    if not path.exists():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def write_json_state(path: Path, state: dict[str, Any], *, mode: int | None = None) -> None:
    """Replace the state at ``path`` atomically (through a temporary file; ``mode`` sets its permissions)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
    if mode is not None:
        tmp.chmod(mode)
    tmp.replace(path)
