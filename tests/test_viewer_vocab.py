"""The viewer's vocabulary comes from the API: ``GET /vocabulary`` serves the labels of cim/vocabulary.py,
the colours of tiles/schema.py and the registered tile classes with their legends (public, with an ETag),
and ``web_viewer/js/vocab.js`` fetches it and exports its tables; no viewer module repeats them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cim.api.app import create_app
from cim.api.settings import ApiSettings
from cim.settings import Settings
from cim.vocabulary import BUILDING_USES, DEFAULT_FACILITY_COLOR, FACILITY_KINDS, SAFETY_CLASSES
from tiles import classes
from tiles.classes import css
from tiles.schema import ELEMENT_COLORS, FACILITY_COLORS, USE_COLORS

JS = Path(__file__).resolve().parents[1] / "web_viewer" / "js"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with reads behind a key: the vocabulary must stay public."""
    with TestClient(create_app(settings, api_settings=ApiSettings(reads_require_key=True))) as c:
        yield c


def test_the_vocabulary_is_served_public_cacheable_and_agrees_with_the_tiles(client: TestClient) -> None:
    r = client.get("/vocabulary")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    # Cacheable (public; made private here by the key-protected deployment's middleware, as every answer).
    assert "max-age=300" in r.headers["cache-control"] and r.headers["etag"].startswith('"')
    assert client.get("/", headers={}).status_code == 401  # other reads need a key here
    doc = r.json()
    assert set(doc["FACILITY_KINDS"]) == set(FACILITY_KINDS) and set(doc["BUILDING_USES"]) == set(BUILDING_USES)
    for kind, (zh, en, colour) in doc["FACILITY_KINDS"].items():
        assert (zh, en) == (FACILITY_KINDS[kind].zh, FACILITY_KINDS[kind].en)
        assert colour == css(FACILITY_COLORS.get(kind, DEFAULT_FACILITY_COLOR)), kind
    for use, (zh, en, colour) in doc["BUILDING_USES"].items():
        assert (zh, en) == BUILDING_USES[use][:2] and colour == css(USE_COLORS[use]), use
    assert doc["IFC_CLASS_COLORS"] == {k: css(v) for k, v in ELEMENT_COLORS.items()}
    assert {k: tuple(v[:2]) for k, v in doc["SAFETY_CLASSES"].items()} == SAFETY_CLASSES
    # Every registered tile class, with its layer, id property and legend (a legend line per value).
    assert list(doc["TILE_CLASSES"]) == [c.metadata_class for c in classes.registered()]
    roads = doc["TILE_CLASSES"]["road"]
    assert roads["layer"] == "roads" and roads["id_property"] == "facility_id" and roads["legend_property"] == "kind"
    assert {e["value"] for e in roads["legend"]} == {"road", "greenway"}
    assert doc["TILE_CLASSES"]["district"]["legend"][0]["zh"] == "行政区界"
    # Conditional GET.
    again = client.get("/vocabulary", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
    assert client.get("/vocabulary", headers={"If-None-Match": '"other"'}).status_code == 200


def test_vocab_js_exports_the_served_tables_and_no_viewer_module_repeats_them(client: TestClient) -> None:
    text = (JS / "vocab.js").read_text(encoding="utf-8")
    assert '"/vocabulary"' in text and "await fetchVocabulary()" in text
    exported = dict(re.findall(r"^export const (\w+) = vocabulary\.(\w+);$", text, re.MULTILINE))
    assert exported == {k: k for k in client.get("/vocabulary").json()}
    # No table is written out in the viewer: no facility kind, building use or IFC class appears as a literal.
    for path in JS.glob("*.js"):
        source = path.read_text(encoding="utf-8")
        for word in ("pipe_water", "residential", "IfcWall", "#286ee6"):
            assert word not in source, (path.name, word)
