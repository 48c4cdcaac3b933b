"""SensorThings query options → SQL: ``$filter`` (parsed by odata-query), ``$orderby``, ``$select``, ``$expand``.

The filter parser is odata-query's (a maintained OData v4 grammar); this module walks its syntax tree and
writes PostgreSQL/PostGIS, with every literal as a bound parameter. Navigation paths become correlated
sub-queries (to-one) or ``EXISTS`` (to-many). ``geo.distance`` and ``geo.length`` are in metres (geodesic,
on the CGCS2000 ellipsoid through ``geography``); other spatial functions work on EPSG:4490 geometry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from odata_query import ast
from odata_query import exceptions as odata_exceptions
from odata_query.grammar import ODataLexer, ODataParser

from cim.crs import CGCS2000
from cim.sensing.entities import BY_NAME, EntityType
from cim.sensing.errors import StaBadRequestError

# Functions of the SensorThings standard that the OData grammar does not list; they are parsed under a
# namespace (which the grammar does not check) and compiled here.
_STA_EXTRA = (
    "substringof",
    "st_equals",
    "st_disjoint",
    "st_touches",
    "st_within",
    "st_overlaps",
    "st_crosses",
    "st_intersects",
    "st_contains",
    "st_relate",
)
_EXTRA_RE = re.compile(r"\b(" + "|".join(_STA_EXTRA) + r")\s*\(")


@dataclass
class Params:
    """Bound parameters shared by every fragment of one statement."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> str:
        """Bind ``value``; return its placeholder (``:p3``)."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


@dataclass(frozen=True)
class Expr:
    """A compiled expression: SQL text, its kind, and the to-many joins it needs (wrapped by ``EXISTS``)."""

    sql: str
    kind: str  # number | text | bool | time | geom | json | result | interval | null | any
    joins: tuple[tuple[str, str], ...] = ()  # (FROM item, join condition)


def _mask_strings(text: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", lambda m: " " * len(m.group(0)), text)


def parse_filter(text: str) -> ast._Node:
    """Parse a ``$filter`` expression; :class:`StaBadRequestError` with the parser's reason when it is invalid."""
    masked = _mask_strings(text)
    out, last = [], 0
    for m in _EXTRA_RE.finditer(masked):
        out.append(text[last : m.start()])
        out.append("sta." + m.group(1) + "(")
        last = m.end()
    out.append(text[last:])
    try:
        return ODataParser().parse(ODataLexer().tokenize("".join(out)))
    except odata_exceptions.ODataException as exc:
        raise StaBadRequestError(f"invalid $filter: {exc}") from exc
    except Exception as exc:  # sly raises plain exceptions on some syntax errors
        raise StaBadRequestError(f"invalid $filter {text!r}: {exc}") from exc


class Compiler:
    """Compiles expressions on one entity type (the row under alias ``alias``) to SQL."""

    def __init__(self, entity: EntityType, alias: str, params: Params) -> None:
        self.entity = entity
        self.alias = alias
        self.params = params
        self._aliases = 0

    # -- entry points --------------------------------------------------------------------------------

    def condition(self, node: ast._Node) -> str:
        """A boolean SQL condition for ``node``."""
        expr = self.expr(node)
        if expr.kind not in ("bool", "any", "json", "result"):
            raise StaBadRequestError("$filter must be a boolean expression")
        return self._wrap(expr) if expr.kind == "bool" else f"({self._as(expr, 'bool').sql})"

    def order_term(self, text: str) -> str:
        """One ``$orderby`` term (``phenomenonTime desc``) as SQL; nulls sort as PostgreSQL does."""
        parts = text.strip().rsplit(" ", 1)
        direction = "ASC"
        if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
            text, direction = parts[0], parts[1].upper()
        expr = self.expr(parse_filter(text.strip()))
        if expr.joins:
            raise StaBadRequestError("$orderby cannot follow a to-many navigation")
        if expr.kind == "result":
            return f"{self.alias}.result_number {direction}, ({expr.sql} #>> '{{}}') {direction}"
        if expr.kind == "geom":
            raise StaBadRequestError("$orderby on a geometry is not supported")
        return f"{expr.sql} {direction}"

    # -- expressions ---------------------------------------------------------------------------------

    def expr(self, node: ast._Node) -> Expr:
        """Compile any expression node."""
        if isinstance(node, ast.Identifier | ast.Attribute):
            return self._path(node)
        if isinstance(node, ast.Null):
            return Expr("NULL", "null")
        if isinstance(node, ast.Boolean):
            return Expr("CAST(" + self.params.add(node.val.lower() == "true") + " AS boolean)", "bool")
        if isinstance(node, ast.Integer | ast.Float):
            return Expr("CAST(" + self.params.add(float(node.val)) + " AS double precision)", "number")
        if isinstance(node, ast.String):
            return Expr("CAST(" + self.params.add(node.val) + " AS text)", "text")
        if isinstance(node, ast.DateTime | ast.Date):
            return Expr("CAST(" + self.params.add(node.val) + " AS timestamptz)", "time")
        if isinstance(node, ast.Duration):
            return Expr("CAST(" + self.params.add(node.val) + " AS interval)", "duration")
        if isinstance(node, ast.Geography):
            wkt = re.sub(r"^SRID=\d+;", "", node.val.strip(), flags=re.IGNORECASE)
            return Expr(f"ST_GeomFromText({self.params.add(wkt)}, {CGCS2000})", "geom")
        if isinstance(node, ast.BoolOp):
            left = self.condition(node.left)
            right = self.condition(node.right)
            op = "AND" if isinstance(node.op, ast.And) else "OR"
            return Expr(f"({left} {op} {right})", "bool")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return Expr(f"(NOT {self.condition(node.operand)})", "bool")
            operand = self._as(self.expr(node.operand), "number")
            return Expr(f"(-{operand.sql})", "number", operand.joins)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BinOp):
            return self._arith(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise StaBadRequestError(f"unsupported expression in $filter: {type(node).__name__}")

    def _path(self, node: ast._Node) -> Expr:
        names: list[str] = []
        while isinstance(node, ast.Attribute):
            names.insert(0, node.attr)
            node = node.owner
        if not isinstance(node, ast.Identifier):
            raise StaBadRequestError("invalid property path in $filter")
        names.insert(0, node.name)
        return self._walk(self.entity, self.alias, names, ())

    def _walk(self, entity: EntityType, alias: str, names: list[str], joins: tuple[tuple[str, str], ...]) -> Expr:
        head, rest = names[0], names[1:]
        nav = entity.nav(head)
        if nav is not None:
            target = BY_NAME[nav.target]
            if not rest:
                raise StaBadRequestError(f"{head} is a navigation property; name one of its properties")
            inner = self._new_alias()
            if nav.local_fk:
                sub = self._walk(target, inner, rest, ())
                if sub.joins:  # a to-many step further on: the whole path goes into EXISTS
                    hop = (f"{target.table} {inner}", f"{inner}.id = {alias}.{nav.local_fk}")
                    return Expr(sub.sql, sub.kind, (*joins, hop, *sub.joins))
                sql = f"(SELECT {sub.sql} FROM {target.table} {inner} WHERE {inner}.id = {alias}.{nav.local_fk})"
                return Expr(sql, sub.kind, joins)
            if nav.remote_fk:
                join = (f"{target.table} {inner}", f"{inner}.{nav.remote_fk} = {alias}.id")
            else:
                assert nav.link is not None
                table, mine, theirs = nav.link
                link = self._new_alias()
                join = (
                    f"{table} {link} JOIN {target.table} {inner} ON {inner}.id = {link}.{theirs}",
                    f"{link}.{mine} = {alias}.id",
                )
            return self._walk(target, inner, rest, (*joins, join))
        prop = entity.prop(head)
        if prop is None:
            raise StaBadRequestError(f"{entity.name} has no property {head!r}")
        if prop.kind == "id":
            return Expr(f"{alias}.id", "number", joins)
        if prop.kind in ("json", "result") and rest:
            path = self.params.add(rest)
            return Expr(f"({alias}.{prop.column} #> CAST({path} AS text[]))", "json", joins)
        if rest:
            raise StaBadRequestError(f"{entity.name}/{head} has no sub-properties")
        if prop.kind == "geojson":
            return Expr(f"{alias}.{prop.geom_column}", "geom", joins)
        if prop.kind == "interval":
            return Expr(f"{alias}.{prop.column}", "time", joins)
        if prop.kind == "result":
            return Expr(f"{alias}.result", "result", joins)
        kind = {"text": "text", "json": "json", "time": "time"}[prop.kind]
        return Expr(f"{alias}.{prop.column}", kind, joins)

    def _new_alias(self) -> str:
        self._aliases += 1
        return f"{self.alias}_{self._aliases}"

    def _wrap(self, expr: Expr) -> str:
        """A boolean expression that needs to-many joins, as ``EXISTS (…)``."""
        if not expr.joins:
            return expr.sql
        froms = ", ".join(j[0] for j in expr.joins)
        wheres = " AND ".join(j[1] for j in expr.joins)
        return f"EXISTS (SELECT 1 FROM {froms} WHERE {wheres} AND {expr.sql})"

    def _as(self, expr: Expr, kind: str) -> Expr:
        """``expr`` converted to ``kind`` where the stored type is JSON (properties, results)."""
        if expr.kind not in ("json", "result") or kind in ("json", "any"):
            return expr
        if expr.kind == "result" and kind == "number":
            column = expr.sql.rsplit(".", 1)[0] + ".result_number"
            return Expr(column, "number", expr.joins)
        x = expr.sql
        if kind == "number":
            return Expr(
                f"(CASE WHEN jsonb_typeof({x}) = 'number' THEN ({x} #>> '{{}}')::double precision END)",
                "number",
                expr.joins,
            )
        if kind == "bool":
            return Expr(
                f"(CASE WHEN jsonb_typeof({x}) = 'boolean' THEN ({x} #>> '{{}}')::boolean END)", "bool", expr.joins
            )
        if kind == "time":
            return Expr(
                f"(CASE WHEN jsonb_typeof({x}) = 'string' THEN ({x} #>> '{{}}') END)::timestamptz", "time", expr.joins
            )
        return Expr(f"({x} #>> '{{}}')", "text", expr.joins)

    def _compare(self, node: ast.Compare) -> Expr:
        ops = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
        op = next((sql for cls, sql in ops.items() if isinstance(node.comparator, cls)), None)
        if op is None:
            raise StaBadRequestError(f"unsupported comparison {type(node.comparator).__name__}")
        left, right = self.expr(node.left), self.expr(node.right)
        joins = left.joins + right.joins
        if right.kind == "null" or left.kind == "null":
            value = left if right.kind == "null" else right
            test = "IS NULL" if op == "=" else "IS NOT NULL" if op == "<>" else None
            if test is None:
                raise StaBadRequestError("null can only be compared with eq or ne")
            return Expr(f"({value.sql} {test})", "bool", joins)
        kind = _common_kind(left.kind, right.kind)
        left, right = self._as(left, kind), self._as(right, kind)
        if kind == "geom":
            raise StaBadRequestError("geometries are compared with st_equals, not eq")
        return Expr(f"({left.sql} {op} {right.sql})", "bool", joins)

    def _arith(self, node: ast.BinOp) -> Expr:
        left, right = self.expr(node.left), self.expr(node.right)
        joins = left.joins + right.joins
        if {left.kind, right.kind} & {"duration"}:
            op = {ast.Add: "+", ast.Sub: "-"}.get(type(node.op))
            if op is None:
                raise StaBadRequestError("durations can only be added or subtracted")
            return Expr(f"({self._as(left, 'time').sql} {op} {right.sql})", "time", joins)
        if left.kind == "time" and right.kind == "time" and isinstance(node.op, ast.Sub):
            return Expr(f"({left.sql} - {right.sql})", "duration", joins)
        left, right = self._as(left, "number"), self._as(right, "number")
        if isinstance(node.op, ast.Add):
            sql = f"({left.sql} + {right.sql})"
        elif isinstance(node.op, ast.Sub):
            sql = f"({left.sql} - {right.sql})"
        elif isinstance(node.op, ast.Mult):
            sql = f"({left.sql} * {right.sql})"
        elif isinstance(node.op, ast.Div):
            sql = f"({left.sql}::double precision / NULLIF({right.sql}, 0))"
        elif isinstance(node.op, ast.Mod):
            sql = f"mod({left.sql}::numeric, NULLIF({right.sql}, 0)::numeric)::double precision"
        else:
            raise StaBadRequestError(f"unsupported operator {type(node.op).__name__}")
        return Expr(sql, "number", joins)

    def _call(self, node: ast.Call) -> Expr:
        name = node.func.name.lower()
        args = [self.expr(a) for a in node.args]
        joins = tuple(j for a in args for j in a.joins)

        def text(i: int) -> str:
            return self._as(args[i], "text").sql

        def num(i: int) -> str:
            return self._as(args[i], "number").sql

        def time(i: int) -> str:
            return self._as(args[i], "time").sql

        def geom(i: int) -> str:
            if args[i].kind != "geom":
                raise StaBadRequestError(f"{name}() needs geometries (location, feature or geography'…')")
            return args[i].sql

        string_fns: dict[str, tuple[str, str]] = {
            "substringof": ("bool", "(strpos({1}, {0}) > 0)"),
            "contains": ("bool", "(strpos({0}, {1}) > 0)"),
            "startswith": ("bool", "starts_with({0}, {1})"),
            "endswith": ("bool", "(right({0}, char_length({1})) = {1})"),
            "indexof": ("number", "(strpos({0}, {1}) - 1)"),
            "concat": ("text", "({0} || {1})"),
        }
        if name in string_fns:
            kind, template = string_fns[name]
            return Expr(template.format(text(0), text(1)), kind, joins)
        if name == "length" and node.func.namespace != ("geo",):
            return Expr(f"char_length({text(0)})", "number", joins)
        if name == "substring":
            extra = f", ({num(2)})::int" if len(args) == 3 else ""
            return Expr(f"substr({text(0)}, ({num(1)})::int + 1{extra})", "text", joins)
        if name in ("tolower", "toupper", "trim"):
            fn = {"tolower": "lower", "toupper": "upper", "trim": "btrim"}[name]
            return Expr(f"{fn}({text(0)})", "text", joins)
        parts = {"year": "YEAR", "month": "MONTH", "day": "DAY", "hour": "HOUR", "minute": "MINUTE"}
        if name in parts:
            return Expr(
                f"EXTRACT({parts[name]} FROM ({time(0)}) AT TIME ZONE 'UTC')::double precision", "number", joins
            )
        if name == "second":
            return Expr(
                f"floor(EXTRACT(SECOND FROM ({time(0)}) AT TIME ZONE 'UTC'))::double precision", "number", joins
            )
        if name == "fractionalseconds":
            t = time(0)
            return Expr(
                f"(EXTRACT(SECOND FROM {t}) - floor(EXTRACT(SECOND FROM {t})))::double precision", "number", joins
            )
        if name == "date":
            return Expr(f"((({time(0)}) AT TIME ZONE 'UTC')::date)::timestamptz", "time", joins)
        if name == "time":
            return Expr(f"to_char(({time(0)}) AT TIME ZONE 'UTC', 'HH24:MI:SS')", "text", joins)
        if name == "totaloffsetminutes":
            return Expr("0::double precision", "number", joins)
        if name == "now":
            return Expr("now()", "time")
        if name in ("mindatetime", "maxdatetime"):
            return Expr("'-infinity'::timestamptz" if name == "mindatetime" else "'infinity'::timestamptz", "time")
        if name in ("round", "floor", "ceiling"):
            fn = {"round": "round", "floor": "floor", "ceiling": "ceil"}[name]
            return Expr(f"{fn}({num(0)})", "number", joins)
        if name == "distance":
            return Expr(f"ST_Distance(({geom(0)})::geography, ({geom(1)})::geography)", "number", joins)
        if name == "length" and node.func.namespace == ("geo",):
            return Expr(f"ST_Length(({geom(0)})::geography)", "number", joins)
        if name == "intersects" and node.func.namespace == ("geo",):
            return Expr(f"ST_Intersects({geom(0)}, {geom(1)})", "bool", joins)
        spatial = {
            "st_equals": "ST_Equals",
            "st_disjoint": "ST_Disjoint",
            "st_touches": "ST_Touches",
            "st_within": "ST_Within",
            "st_overlaps": "ST_Overlaps",
            "st_crosses": "ST_Crosses",
            "st_intersects": "ST_Intersects",
            "st_contains": "ST_Contains",
        }
        if name in spatial:
            return Expr(f"{spatial[name]}({geom(0)}, {geom(1)})", "bool", joins)
        if name == "st_relate":
            return Expr(f"ST_Relate({geom(0)}, {geom(1)}, {text(2)})", "bool", joins)
        raise StaBadRequestError(f"unsupported function {node.func.full_name()}() in $filter")


def _common_kind(a: str, b: str) -> str:
    loose = ("json", "result", "any")
    if a in loose and b in loose:
        return "text"
    if a in loose:
        return b
    if b in loose:
        return a
    if a != b and {a, b} != {"number"}:
        if {a, b} == {"time", "text"}:
            return "time"
        raise StaBadRequestError(f"cannot compare a {a} with a {b}")
    return a


# -- $expand / $select -------------------------------------------------------------------------------


@dataclass
class Options:
    """Query options of one level (the request, or one ``$expand`` item)."""

    filter: str | None = None
    orderby: list[str] = field(default_factory=list)
    select: list[str] | None = None
    expand: dict[str, Options] = field(default_factory=dict)
    top: int | None = None
    skip: int = 0
    count: bool = False


def split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and quoted strings."""
    out, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [p.strip() for p in out if p.strip()]


def parse_options(raw: dict[str, str], *, default_top: int, max_top: int) -> Options:
    """Options from ``$name → value`` pairs (the request's query string or one expand item's)."""
    opts = Options(top=None)
    for key, value in raw.items():
        if key == "$filter":
            opts.filter = value
        elif key == "$orderby":
            opts.orderby = split_top(value, ",")
        elif key == "$select":
            opts.select = [s.strip() for s in split_top(value, ",")]
        elif key == "$expand":
            for item in split_top(value, ","):
                _add_expand(opts.expand, item, default_top=default_top, max_top=max_top)
        elif key == "$top":
            opts.top = _int_option(key, value)
            if opts.top > max_top:
                opts.top = max_top
        elif key == "$skip":
            opts.skip = _int_option(key, value)
        elif key == "$count":
            if value not in ("true", "false"):
                raise StaBadRequestError("$count must be true or false")
            opts.count = value == "true"
        elif key.startswith("$") and key not in ("$resultFormat", "$format"):
            raise StaBadRequestError(f"unknown query option {key}")
    if opts.top is None:
        opts.top = default_top
    return opts


def _int_option(key: str, value: str) -> int:
    if not value.isdigit():
        raise StaBadRequestError(f"{key} must be a non-negative integer, not {value!r}")
    return int(value)


def _add_expand(into: dict[str, Options], item: str, *, default_top: int, max_top: int) -> None:
    m = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?(?:/(.+))?", item, flags=re.DOTALL)
    if not m:
        raise StaBadRequestError(f"invalid $expand item {item!r}")
    name, inner, deeper = m.group(1), m.group(2), m.group(3)
    raw: dict[str, str] = {}
    for part in split_top(inner or "", ";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise StaBadRequestError(f"invalid option {part!r} in $expand")
        raw[key.strip()] = value.strip()
    if name in into:
        opts = into[name]
        if raw:
            more = parse_options(raw, default_top=default_top, max_top=max_top)
            opts.expand.update(more.expand)
    else:
        opts = parse_options(raw, default_top=default_top, max_top=max_top)
        into[name] = opts
    if deeper:
        _add_expand(opts.expand, deeper, default_top=default_top, max_top=max_top)
