"""Checks of analysis parameters shared by the analyses and their API (the run table is :mod:`cim.db.runs`)."""

from __future__ import annotations

from cim.errors import AnalysisError


def checked_code(value: str | None, what: str = "district code") -> str | None:
    """``value`` when it is a usable code (≤ 64 characters, no control characters); else AnalysisError."""
    if value is not None and (len(value) > 64 or any(ord(ch) < 32 for ch in value)):
        raise AnalysisError(f"invalid {what} {value[:64]!r}: at most 64 printable characters")
    return value
