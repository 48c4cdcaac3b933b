"""CQL2 filters (text and JSON, via pygeofilter) as SQLAlchemy expressions on a published collection.

Only the collection's queryables (and ``geometry``/``id``) may appear. Geometry literals are CRS84
longitude/latitude, compared with stored EPSG:4490 geometry as is (the two agree to centimetres).
"""

from __future__ import annotations

import json
from typing import Any

from pygeofilter import ast, values
from pygeofilter.backends.evaluator import handle
from pygeofilter.backends.sqlalchemy.evaluate import SQLAlchemyFilterEvaluator
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parse as parse_cql2_text
from sqlalchemy import ColumnElement, func

from cim.crs import CGCS2000
from cim.db.features import FeatureCollectionDef


class _Evaluator(SQLAlchemyFilterEvaluator):
    """pygeofilter's SQLAlchemy evaluator with geometry literals in the storage CRS."""

    @handle(values.Geometry)
    def geometry(self, node: Any) -> Any:
        geo = dict(node.__geo_interface__)
        geo.pop("crs", None)
        return func.ST_SetSRID(func.ST_GeomFromGeoJSON(json.dumps(geo)), CGCS2000)

    @handle(values.Envelope)
    def envelope(self, node: Any) -> Any:
        return func.ST_MakeEnvelope(node.x1, node.y1, node.x2, node.y2, CGCS2000)

    @handle(ast.BBox)
    def bbox(self, node: Any, lhs: Any) -> Any:
        return func.ST_Intersects(lhs, func.ST_MakeEnvelope(node.minx, node.miny, node.maxx, node.maxy, CGCS2000))


def _attributes(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, ast.Attribute):
        names.add(node.name)
    if hasattr(node, "get_sub_nodes"):
        subs = node.get_sub_nodes()
        for sub in subs if isinstance(subs, list) else [subs]:
            if sub is not None:
                names |= _attributes(sub)
    return names


def cql_filter(coll: FeatureCollectionDef, text: str, lang: str = "cql2-text") -> ColumnElement[bool]:
    """The SQL condition of a CQL2 filter; :class:`ValueError` with a reason when it is invalid."""
    try:
        tree = parse_cql2_json(json.loads(text)) if lang == "cql2-json" else parse_cql2_text(text)
    except Exception as exc:  # the parsers raise many types (lark, json, KeyError…)
        raise ValueError(
            f"invalid {lang} filter: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    t = coll.table
    mapping: dict[str, Any] = {name: t.c[name] for name in coll.queryables}
    mapping.update({"geometry": t.c[coll.geometry], "id": t.c.id})
    unknown = _attributes(tree) - set(mapping)
    if unknown:
        raise ValueError(f"filter uses unknown properties {sorted(unknown)}; queryables: {', '.join(sorted(mapping))}")
    try:
        expression = _Evaluator(mapping, False).evaluate(tree)
    except Exception as exc:
        raise ValueError(f"unsupported {lang} filter: {exc}") from exc
    if not isinstance(expression, ColumnElement):
        raise ValueError("the filter is not a condition")
    return expression
