"""The source-format registry recognises each upload by its content (and name), never by a lone "{"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cim.api.uploads import sniff
from ingest import formats

FEATURE_COLLECTION = json.dumps({"type": "FeatureCollection", "features": []}).encode()


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (b"ISO-10303-21;\nHEADER;", "office.ifc", "ifc"),
        (b"SQLite format 3\x00" + b"\0" * 80, "layers.gpkg", "gpkg"),
        (b"PK\x03\x04" + b"\0" * 40, "roads.zip", "zip"),
        (b"II*\x00" + b"\0" * 40, "dem.tif", "geotiff"),
        (b"fgb\x03fgb\x00" + b"\0" * 40, "pipes.fgb", "fgb"),
        (FEATURE_COLLECTION, None, "geojson"),
        (b'\xef\xbb\xbf  {"type": "Feature", "geometry": null, "properties": {}}', None, "geojson"),
        (b'{"name": "roads", "crs": {}, "features": [', None, "geojson"),
    ],
)
def test_each_registered_format_recognises_its_files(head: bytes, name: str | None, expected: str) -> None:
    assert sniff(head, name) == expected


@pytest.mark.parametrize(
    "head",
    [
        b'{"type": "CityJSON", "version": "2.0", "CityObjects": {}}',
        b'{"db": {"host": "localhost"}}',
        b"{",
        b"just some text",
    ],
)
def test_a_json_object_that_is_not_geojson_is_not_taken_for_geojson(head: bytes) -> None:
    assert sniff(head, "upload.json") is None


def test_a_geojson_named_file_is_recognised_by_its_name_when_its_head_shows_no_type() -> None:
    head = b'{"bbox": [' + b"1.0, " * 20 + b"1.0]"
    assert sniff(head, "wards.geojson") == "geojson"
    assert sniff(head, "wards.json") is None


def test_supports_reads_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "blocks.geojson"
    path.write_bytes(FEATURE_COLLECTION)
    vector = formats.format_named("vector")
    raster = formats.format_named("raster")
    assert vector is not None and raster is not None
    assert vector.supports(path) and not raster.supports(path)


def test_the_built_in_formats_name_the_cli_commands_that_exist() -> None:
    for fmt in formats.registered():
        assert callable(fmt.cli_command()), fmt.name
    assert formats.names()[:3] == ("ifc", "vector", "raster")


def test_a_format_module_named_in_the_plugin_list_is_loaded_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "PLUGIN_MODULES", ("tests.plugins.toy_format_module",))
    monkeypatch.setattr(formats, "_plugins_loaded", False)
    try:
        assert "toypoints" in formats.names()
        assert formats.identify(b"TOYPOINTS\n1 2 a\n") is not None
    finally:
        formats.unregister("toypoints")
