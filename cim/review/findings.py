"""What a review produces: findings (rule, severity, zh/en message, GlobalIds, measure), per-check results,
and the report that gathers them (the JSON document of ``docs/review.md``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
Verdict = Literal["pass", "fail", "skipped"]
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")
REPORT_VERSION = "1.0"


@dataclass(frozen=True)
class Finding:
    """One observation of a check.

    ``rule`` is a stable dotted id (``planning.height``); an ``error`` fails its check, a ``warning`` is shown
    but does not, ``info`` records what was measured. ``global_ids`` are IFC GlobalIds of the model's
    elements concerned. ``value``/``limit``/``unit`` are given when the finding is a measure (metres, m², h…);
    ``detail`` holds anything else (ids of stored buildings, hours per window…).
    """

    rule: str
    severity: Severity
    message_zh: str
    message_en: str
    global_ids: tuple[str, ...] = ()
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The finding as JSON-ready values (measures only when present)."""
        out: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity,
            "message_zh": self.message_zh,
            "message_en": self.message_en,
            "global_ids": list(self.global_ids),
        }
        if self.value is not None:
            out["value"] = round(float(self.value), 4)
            out["limit"] = round(float(self.limit), 4) if self.limit is not None else None
            out["unit"] = self.unit
        if self.detail:
            out["detail"] = self.detail
        return out


@dataclass
class CheckResult:
    """Findings of one check; ``skipped`` when it could not apply (the reason is an ``info`` finding)."""

    name: str
    findings: list[Finding] = field(default_factory=list)
    skipped: bool = False
    seconds: float = 0.0

    @property
    def verdict(self) -> Verdict:
        """``fail`` when any finding is an error, ``skipped`` when it did not apply, else ``pass``."""
        if any(f.severity == "error" for f in self.findings):
            return "fail"
        return "skipped" if self.skipped else "pass"

    def to_dict(self) -> dict[str, Any]:
        """The check's verdict and findings."""
        return {
            "verdict": self.verdict,
            "findings": [f.to_dict() for f in self.findings],
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ReviewReport:
    """The whole review: the model, the parcel, and one :class:`CheckResult` per check run."""

    file_name: str
    sha256: str
    size_bytes: int
    schema: str | None = None
    parcel: dict[str, Any] | None = None
    model: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, CheckResult] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    seconds: float = 0.0

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        """``fail`` when any check fails; skipped checks do not fail the review."""
        return "fail" if any(c.verdict == "fail" for c in self.checks.values()) else "pass"

    def findings(self) -> list[tuple[str, Finding]]:
        """Every finding with the name of its check, in check order."""
        return [(name, f) for name, result in self.checks.items() for f in result.findings]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema: ``cim/review/report.schema.json``, documented in docs/review.md)."""
        return {
            "version": REPORT_VERSION,
            "verdict": self.verdict,
            "file_name": self.file_name,
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "schema": self.schema,
            "parcel": self.parcel,
            "model": self.model,
            "created_at": self.created_at,
            "seconds": round(self.seconds, 3),
            "checks": {name: result.to_dict() for name, result in self.checks.items()},
        }


def finding_from_dict(data: dict[str, Any]) -> Finding:
    """A :class:`Finding` back from its JSON form (reports stored in the database)."""
    names = {f.name for f in dataclasses.fields(Finding)}
    values = {k: v for k, v in data.items() if k in names}
    values["global_ids"] = tuple(values.get("global_ids", ()))
    return Finding(**values)


def report_from_dict(data: dict[str, Any]) -> ReviewReport:
    """A :class:`ReviewReport` back from its JSON form (to render HTML/PDF/BCF of a stored review)."""
    report = ReviewReport(
        file_name=data["file_name"],
        sha256=data["sha256"],
        size_bytes=int(data["size_bytes"]),
        schema=data.get("schema"),
        parcel=data.get("parcel"),
        model=dict(data.get("model") or {}),
        created_at=data.get("created_at") or "",
        seconds=float(data.get("seconds") or 0.0),
    )
    for name, check in (data.get("checks") or {}).items():
        report.checks[name] = CheckResult(
            name=name,
            findings=[finding_from_dict(f) for f in check.get("findings", [])],
            skipped=check.get("verdict") == "skipped",
            seconds=float(check.get("seconds") or 0.0),
        )
    return report
