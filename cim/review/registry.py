"""The registry of review checks: each check is a name, what it needs and a function returning findings.

A new check is one module under :mod:`cim.review.checks` that calls :func:`register`; the command line's
``--checks`` and the API's ``checks`` field accept every registered name, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from cim.errors import ReviewError
from cim.review.findings import CheckResult, Finding
from cim.review.settings import ReviewSettings
from cim.settings import Settings

if TYPE_CHECKING:
    from cim.review.model import ReviewModel

NEEDS = ("model", "georef", "database", "parcel", "ids")
"""What a check may need: the opened model, its georeference, the database, a parcel, IDS files."""


@dataclass
class ReviewContext:
    """Everything a check may read: the model, the deployment's settings, the database and the inputs."""

    model: ReviewModel
    settings: Settings
    review_settings: ReviewSettings
    engine: Engine | None = None
    parcel: dict[str, Any] | None = None
    ids_files: list[Path] = field(default_factory=list)
    replaces: set[int] = field(default_factory=set)
    cache: dict[str, Any] = field(default_factory=dict)


CheckFunction = Callable[[ReviewContext], list[Finding]]


@dataclass(frozen=True)
class Check:
    """A registered check: ``needs`` ⊆ :data:`NEEDS`; ``run`` returns its findings."""

    name: str
    title_zh: str
    title_en: str
    needs: frozenset[str]
    run: CheckFunction


CHECKS: dict[str, Check] = {}


def register(
    name: str, *, title_zh: str, title_en: str, needs: Iterable[str]
) -> Callable[[CheckFunction], CheckFunction]:
    """Decorator that registers a check function under ``name``."""
    wanted = frozenset(needs)
    unknown = wanted - set(NEEDS)
    if unknown:
        raise ValueError(f"unknown needs {sorted(unknown)}; choose among {NEEDS}")

    def decorate(function: CheckFunction) -> CheckFunction:
        CHECKS[name] = Check(name, title_zh, title_en, wanted, function)
        return function

    return decorate


def registered() -> dict[str, Check]:
    """Every registered check, in order (importing the checks package registers them)."""
    import cim.review.checks  # noqa: F401  (registers the built-in checks)

    return CHECKS


def resolve_checks(names: Iterable[str] | None) -> list[Check]:
    """The checks to run: ``names`` (comma-separated items allowed), else all; unknown names are refused."""
    checks = registered()
    if names is None:
        return list(checks.values())
    chosen = [n.strip() for item in names for n in item.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in checks]
    if unknown or not chosen:
        raise ReviewError(f"unknown checks {unknown or chosen}; choose among {', '.join(checks)}")
    return [checks[n] for n in checks if n in chosen]


_UNMET: dict[str, tuple[str, str, str]] = {
    "georef": (
        "needs_georeference",
        "模型缺少地理参照，无法在城市模型中定位，本项未检查（见“地理参照”）。",
        "The model has no usable georeference, so it cannot be placed in the city; not checked (see georef).",
    ),
    "database": ("needs_database", "未连接平台数据库，本项未检查。", "No platform database is connected; not checked."),
    "parcel": ("needs_parcel", "未指定地块（--parcel），本项未检查。", "No parcel was given (--parcel); not checked."),
}
"""Needs a review may lack, in the order they are reported: rule suffix and the zh/en reason."""


def _lacks(need: str, context: ReviewContext) -> bool:
    if need == "georef":
        return not context.model.located
    return (context.engine if need == "database" else context.parcel) is None


def missing_needs(check: Check, context: ReviewContext) -> Finding | None:
    """An ``info`` finding that says why ``check`` cannot apply, or ``None`` when everything it needs is there."""
    for need, (suffix, zh, en) in _UNMET.items():
        if need in check.needs and _lacks(need, context):
            return Finding(rule=f"{check.name}.{suffix}", severity="info", message_zh=zh, message_en=en)
    return None


def run_check(check: Check, context: ReviewContext) -> CheckResult:
    """Run one check (or record why it cannot apply)."""
    import time

    started = time.perf_counter()
    reason = missing_needs(check, context)
    if reason is not None:
        return CheckResult(check.name, [reason], skipped=True, seconds=time.perf_counter() - started)
    findings = check.run(context)
    return CheckResult(check.name, findings, seconds=time.perf_counter() - started)
