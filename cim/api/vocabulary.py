"""``GET /vocabulary``: the controlled vocabularies and the tile classes' legends, as the viewer needs them.

One document, served to everybody (it holds no data, only labels and colours) and cacheable (strong ETag,
``If-None-Match`` → 304): facility kinds, building uses and safety classes (key → [zh, en, CSS colour]),
IFC class colours, CIM levels — labels from :mod:`cim.vocabulary`, tile colours from :mod:`tiles.schema` —
and ``TILE_CLASSES``: every registered tile content class (:mod:`tiles.classes`) with its layer, metadata
class, id property and legend. ``web_viewer/js/vocab.js`` fetches it once and exports these tables.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response

from cim.api.factory import BaseFactory
from cim.vocabulary import BUILDING_USES, CIM_LEVELS, FACILITY_KINDS, SAFETY_CLASSES

VOCABULARY_TAG = "viewer"
MAX_AGE_SECONDS = 300
OVERLAY_COLORS = {"A": "#2e7d32", "B": "#9ccc65", "C": "#fb8c00", "D": "#d50000"}
"""CSS colours of the dangerous-building overlay by safety class (no tile carries them)."""


def vocabulary() -> dict[str, Any]:
    """The document: tables by the constant names of ``vocab.js``."""
    from tiles import classes
    from tiles.classes import css
    from tiles.schema import DEFAULT_ELEMENT_COLOR, ELEMENT_COLORS

    return {
        "FACILITY_KINDS": {k: [v.zh, v.en, css(v.color)] for k, v in FACILITY_KINDS.items()},
        "BUILDING_USES": {k: [v.zh, v.en, css(v.color)] for k, v in BUILDING_USES.items()},
        "SAFETY_CLASSES": {k: [zh, en, OVERLAY_COLORS[k]] for k, (zh, en) in SAFETY_CLASSES.items()},
        "IFC_CLASS_COLORS": {k: css(v) for k, v in ELEMENT_COLORS.items()},
        "DEFAULT_IFC_CLASS_COLOR": css(DEFAULT_ELEMENT_COLOR),
        "CIM_LEVELS": {str(k): v.split()[0] for k, v in CIM_LEVELS.items()},
        "TILE_CLASSES": {c.metadata_class: c.describe() for c in classes.registered()},
    }


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    return header.strip() == "*" or etag in [t.strip().removeprefix("W/") for t in header.split(",")]


@dataclass
class VocabularyFactory(BaseFactory):
    """``GET /vocabulary``."""

    tags: list[str] = field(default_factory=lambda: [VOCABULARY_TAG])

    def register_routes(self) -> None:
        """``GET /vocabulary``."""

        @self.router.get(
            "/vocabulary",
            summary="Labels, colours and tile-class legends of the viewer (public, cacheable)",
            name=self.route_name("get_vocabulary"),
            responses={304: {"description": "Not modified (If-None-Match matched the ETag)."}},
        )
        def get_vocabulary(request: Request) -> Response:
            body = json.dumps(vocabulary(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE_SECONDS}"}
            if _etag_matches(request.headers.get("if-none-match"), etag):
                return Response(status_code=304, headers=headers)
            return Response(body, media_type="application/json", headers=headers)
