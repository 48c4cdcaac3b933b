"""What the lock file ``uv.lock`` says this machine's Python environment must hold.

uv writes the lock; uv installs from it (``make setup``). This module only reads it, to check an
installed environment against it and to tell runtime components from development-only ones in the SBOM.
uv's own ``uv pip``/``uv tree`` would answer the same questions, but tests must not depend on the uv
binary, and the format is small: ``[[package]]`` tables with dependencies, markers and extras.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.markers import Marker

ROOT = Path(__file__).resolve().parents[1]
LOCK_FILE = ROOT / "uv.lock"
PROJECT = "cim-platform"
VENV_SEED = frozenset({"pip", "setuptools", "wheel"})
"""What ``python -m venv`` seeds into an environment; not in the lock, and ``uv sync`` leaves them alone."""


def normalise(name: str) -> str:
    """A distribution name in PEP 503 normal form (``Jinja2`` → ``jinja2``, ``mapbox_earcut`` → ``mapbox-earcut``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class LockedPackage:
    """One ``[[package]]`` entry of the lock: name, version and the raw table."""

    name: str
    version: str
    table: dict[str, Any]


def read_lock(path: Path = LOCK_FILE) -> list[LockedPackage]:
    """Every package entry of ``uv.lock`` (a name may appear once per resolution fork)."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [LockedPackage(normalise(p["name"]), p["version"], p) for p in data["package"]]


def _applies(dep: dict[str, Any]) -> bool:
    marker = dep.get("marker")
    return marker is None or Marker(marker).evaluate()


def needed_here(packages: list[LockedPackage], extras: Iterable[str] = ("dev",)) -> dict[str, LockedPackage]:
    """The packages this interpreter and platform must have: the project's dependencies and ``extras``, closed.

    Markers are evaluated for the running interpreter, so the result is what ``uv sync --extra dev`` installs
    here. Keys are normal-form names; the project itself is left out.
    """
    by_name: dict[str, list[LockedPackage]] = {}
    for p in packages:
        by_name.setdefault(p.name, []).append(p)

    def pick(dep: dict[str, Any]) -> LockedPackage:
        candidates = by_name[normalise(dep["name"])]
        if "version" in dep:
            candidates = [c for c in candidates if c.version == dep["version"]]
        if len(candidates) != 1:
            raise ValueError(f"uv.lock: cannot tell which {dep['name']} is meant ({len(candidates)} entries)")
        return candidates[0]

    root = by_name[PROJECT][0]
    todo: list[tuple[LockedPackage, set[str]]] = [(root, set(extras))]
    visited: dict[tuple[str, str], set[str]] = {}
    found: dict[str, LockedPackage] = {}
    while todo:
        package, wanted = todo.pop()
        key = (package.name, package.version)
        optional = package.table.get("optional-dependencies", {})
        if key in visited:
            new = wanted - visited[key]
            deps = [d for extra in new for d in optional.get(extra, [])]
            visited[key] |= new
        else:
            deps = list(package.table.get("dependencies", []))
            deps += [d for extra in wanted for d in optional.get(extra, [])]
            visited[key] = set(wanted)
            if package.name != PROJECT:
                found[package.name] = package
        todo += [(pick(dep), set(dep.get("extra", ()))) for dep in deps if _applies(dep)]
    return found


def runtime_names(packages: list[LockedPackage]) -> set[str]:
    """Normal-form names of the packages the platform needs at run time (no development extras)."""
    return set(needed_here(packages, extras=()))


def project_requirements(packages: list[LockedPackage]) -> list[dict[str, Any]]:
    """The ``requires-dist`` of the project as the lock recorded it (to compare with ``pyproject.toml``)."""
    root = next(p for p in packages if p.name == PROJECT)
    return list(root.table["metadata"]["requires-dist"])
