"""CQL2 filters (text and JSON, via pygeofilter) as SQLAlchemy expressions on a published collection.

Only the collection's queryables (and ``geometry``/``id``) may appear. Geometry literals are CRS84
longitude/latitude, compared with stored EPSG:4490 geometry as is (the two agree to centimetres).

Limits, explicit so that no filter reaches a recursion limit (a 500) and the answer is a 400 with the
reason: at most :data:`MAX_FILTER_PREDICATES` predicates and :data:`MAX_FILTER_DEPTH` levels of nesting
(a chain of one operator, ``a OR b OR c …``, is one level). Chains of AND/OR are evaluated as balanced
trees, so a long list of alternatives costs no stack.
"""

from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from typing import Any

import shapely.geometry
from lark import Lark
from pygeofilter import ast, values
from pygeofilter.backends.evaluator import handle
from pygeofilter.backends.sqlalchemy.evaluate import SQLAlchemyFilterEvaluator
from pygeofilter.parsers.cql2_json import parse as parse_cql2_json
from pygeofilter.parsers.cql2_text import parser as cql2_text
from sqlalchemy import ColumnElement, func

from cim.crs import CGCS2000
from cim.db.features import FeatureCollectionDef

MAX_FILTER_PREDICATES = 1000
"""Most predicates (comparisons, LIKE, IN, BETWEEN, spatial and temporal tests) in one filter."""
MAX_FILTER_DEPTH = 32
"""Most levels of nesting (NOT, parentheses of different operators, arithmetic, function calls)."""

# pygeofilter's CQL2 text grammar lets NOT apply to a predicate only, so the valid ``NOT (NOT (a = 1))``
# and ``NOT (a = 1 AND b = 2)`` fail to parse; CQL2 (OGC 21-065) lets NOT apply to any boolean term.
_NOT_RULE = """?condition_1: predicate
            | "NOT"i predicate                                               -> not_
            | "NOT"i "(" predicate ")"                                       -> not_
            | "(" condition ")\""""
_NOT_RULE_FIXED = """?condition_1: predicate
            | "NOT"i condition_1                                             -> not_
            | "(" condition ")\""""


@lru_cache(maxsize=1)
def _text_parser() -> Lark:
    folder = os.path.dirname(cql2_text.__file__)
    with open(os.path.join(folder, "grammar.lark"), encoding="utf-8") as handle_:
        grammar = handle_.read().replace(_NOT_RULE, _NOT_RULE_FIXED)  # no-op once fixed upstream
    return Lark(
        grammar,
        parser="lalr",
        maybe_placeholders=False,
        transformer=cql2_text.CQLTransformer(),
        import_paths=[os.path.dirname(folder)],
    )


def parse_cql2_text(text: str) -> Any:
    """The pygeofilter AST of a CQL2 text filter (LALR parse: no recursion however deep the input)."""
    return _text_parser().parse(text)


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


def _children(node: Any) -> list[Any]:
    if not hasattr(node, "get_sub_nodes"):
        return []
    subs = node.get_sub_nodes()
    return [s for s in (subs if isinstance(subs, list) else [subs]) if s is not None]


def _check_geometry(geo: dict[str, Any]) -> None:
    """:class:`ValueError` unless a geometry literal is well-formed GeoJSON in lon/lat degrees."""
    try:
        shape = shapely.geometry.shape(geo)
    except Exception as exc:  # shapely raises ValueError, TypeError, GEOSException… for malformed input
        raise ValueError(f"invalid {geo.get('type', 'geometry')} literal in the filter: {exc}") from None
    if shape.is_empty:
        raise ValueError(f"empty {geo.get('type')} literal in the filter")
    west, south, east, north = shape.bounds
    if not all(math.isfinite(v) for v in shape.bounds) or not (
        -180 <= west <= east <= 180 and -90 <= south <= north <= 90
    ):
        raise ValueError("geometry literals in the filter are CRS84 longitude/latitude in degrees")


def checked_tree(tree: Any) -> tuple[Any, set[str]]:
    """``(tree, property names)``: limits checked (:class:`ValueError` with the reason), AND/OR chains balanced.

    Walks iteratively, so an over-deep tree is refused without touching the recursion limit. Geometry
    literals are checked too (a polygon ring needs four positions, coordinates are lon/lat).
    """
    attributes: set[str] = set()
    predicates = 0
    deepest = 0
    stack: list[tuple[Any, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_FILTER_DEPTH:
            raise ValueError(f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep; simplify it")
        if isinstance(node, ast.Predicate):
            predicates += 1
            if predicates > MAX_FILTER_PREDICATES:
                raise ValueError(f"the filter has more than {MAX_FILTER_PREDICATES} predicates; split the query")
        if isinstance(node, ast.Attribute):
            attributes.add(node.name)
        elif isinstance(node, values.Geometry):
            _check_geometry(dict(node.geometry))
        for child in _children(node):
            same_chain = isinstance(node, ast.Combination) and type(child) is type(node)
            stack.append((child, depth if same_chain else depth + 1))
    return _balanced(tree), attributes


def _chain(node: ast.Combination) -> list[Any]:
    """The operands of a chain of one combination operator (``a OR b OR c``), left to right."""
    operands: list[Any] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is type(node):
            stack.extend([current.rhs, current.lhs])
        else:
            operands.append(current)
    return operands


def _balanced(node: Any) -> Any:
    """The same condition with every AND/OR chain as a balanced tree (depth log₂ n instead of n)."""
    if isinstance(node, ast.Combination):
        items = [_balanced(o) for o in _chain(node)]
        cls = type(node)
        while len(items) > 1:
            items = [cls(items[i], items[i + 1]) if i + 1 < len(items) else items[i] for i in range(0, len(items), 2)]
        return items[0]
    if isinstance(node, ast.Not):
        return ast.Not(_balanced(node.sub_node))
    return node


def cql_filter(coll: FeatureCollectionDef, text: str, lang: str = "cql2-text") -> ColumnElement[bool]:
    """The SQL condition of a CQL2 filter; :class:`ValueError` with a reason when it is invalid or over a limit."""
    try:
        tree = parse_cql2_json(json.loads(text)) if lang == "cql2-json" else parse_cql2_text(text)
    except RecursionError:
        raise ValueError(f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep; simplify it") from None
    except Exception as exc:  # the parsers raise many types (lark, json, KeyError…)
        raise ValueError(
            f"invalid {lang} filter: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from exc
    tree, attributes = checked_tree(tree)
    t = coll.table
    mapping: dict[str, Any] = {name: t.c[name] for name in coll.queryables}
    mapping.update({"geometry": t.c[coll.geometry], "id": t.c.id})
    unknown = attributes - set(mapping)
    if unknown:
        raise ValueError(f"filter uses unknown properties {sorted(unknown)}; queryables: {', '.join(sorted(mapping))}")
    try:
        expression = _Evaluator(mapping, False).evaluate(tree)
    except Exception as exc:
        raise ValueError(f"unsupported {lang} filter: {exc}") from exc
    if not isinstance(expression, ColumnElement):
        raise ValueError("the filter is not a condition")
    return expression
