"""What the analysis reports (dataclasses) share: their JSON form and, for lists of features, a GeoJSON view."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast


class JsonReport:
    """Mixin of an analysis report dataclass: :meth:`to_dict` gives every field as JSON-ready values."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(cast(Any, self))


class FeaturesReport(JsonReport):
    """A report whose ``features`` field holds GeoJSON features (geometry in lon/lat, CRS84)."""

    features: list[dict[str, Any]]

    def feature_collection(self) -> dict[str, Any]:
        """The features as a GeoJSON FeatureCollection."""
        return {"type": "FeatureCollection", "features": self.features}
