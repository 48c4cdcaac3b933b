"""docs/architecture.md names every registered plug-in and every module it maps."""

from __future__ import annotations

import re
from pathlib import Path

from cim.analysis.indicators import INDICATORS
from ingest import formats

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_registered_source_format_and_indicator_is_named_in_the_architecture_page() -> None:
    for name in formats.names():
        assert f"`{name}`" in DOC, name
    for ind in INDICATORS:
        assert f"`{ind.code}`" in DOC, ind.code


def test_every_file_the_architecture_page_names_exists() -> None:
    named = set(re.findall(r"`((?:cim|ingest|tiles|sample_models|tests|web_viewer)/[\w/.-]+\.(?:py|js|md))`", DOC))
    assert len(named) > 20
    example = {"ingest/cityjson.py"}  # the page's example of a new format
    missing = sorted(p for p in named - example if not (ROOT / p).exists())
    assert missing == []
