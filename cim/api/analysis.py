"""``/analysis/…``: CIM+ indicators and overlays (urban health check, urban safety)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/analysis", tags=["analysis"])
