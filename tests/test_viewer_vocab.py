"""The viewer's vocab.js agrees with cim/vocabulary.py (labels) and tiles/schema.py (colours)."""

from __future__ import annotations

import json
import re

from cim.cli.viewer_vocab import VOCAB_JS, css, render
from cim.vocabulary import BUILDING_USES, FACILITY_KINDS, SAFETY_CLASSES
from tiles.schema import DEFAULT_FACILITY_COLOR, ELEMENT_COLORS, FACILITY_COLORS, USE_COLORS


def _tables() -> dict[str, object]:
    text = VOCAB_JS.read_text(encoding="utf-8")
    return {m[1]: json.loads(m[2]) for m in re.finditer(r"^export const (\w+) = (.*);$", text, re.MULTILINE)}


def test_vocab_js_is_the_generated_file() -> None:
    assert VOCAB_JS.read_text(encoding="utf-8") == render(), "run: python -m cim.cli.viewer_vocab"


def test_the_viewer_colours_every_feature_as_the_tiles_do() -> None:
    tables = _tables()
    facilities, uses, ifc = tables["FACILITY_KINDS"], tables["BUILDING_USES"], tables["IFC_CLASS_COLORS"]
    assert isinstance(facilities, dict) and isinstance(uses, dict) and isinstance(ifc, dict)
    assert set(facilities) == set(FACILITY_KINDS) and set(uses) == set(BUILDING_USES)
    for kind, (zh, en, colour) in facilities.items():
        assert (zh, en) == (FACILITY_KINDS[kind].zh, FACILITY_KINDS[kind].en)
        assert colour == css(FACILITY_COLORS.get(kind, DEFAULT_FACILITY_COLOR)), kind
    for use, (zh, en, colour) in uses.items():
        assert (zh, en) == BUILDING_USES[use] and colour == css(USE_COLORS[use]), use
    assert ifc == {k: css(v) for k, v in ELEMENT_COLORS.items()}
    assert {k: tuple(v[:2]) for k, v in tables["SAFETY_CLASSES"].items()} == SAFETY_CLASSES  # type: ignore[union-attr]
