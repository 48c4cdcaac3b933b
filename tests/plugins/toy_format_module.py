"""The toy source format registering itself on import, as a module named in ``ingest.formats.PLUGIN_MODULES`` does."""

from __future__ import annotations

from ingest.formats import register
from tests.plugins.toy_format import ToyPointsFormat

register(ToyPointsFormat())
