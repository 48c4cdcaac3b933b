"""Property-based requests generated from /openapi.json (schemathesis): no request may cause a server error."""

from __future__ import annotations

import itertools
import os

import pytest
import schemathesis
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from cim.api.app import create_app
from cim.api.security import new_api_key
from cim.api.settings import ApiSettings, ViewerSettings
from tests import factories

EXAMPLES = int(os.environ.get("CIM_FUZZ_EXAMPLES", "10"))
"""Examples per operation and mode: 10 in `make test` (fixed seed); `make fuzz` raises it and draws new ones."""


@pytest.fixture
def api_schema(settings):
    """The app on this test's database, a few rows in it, its OpenAPI document loaded by schemathesis."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    app = create_app(settings, api_settings=ApiSettings(access_log=False), viewer_settings=ViewerSettings())
    with app.state.engine.begin() as conn:
        ds = factories.dataset(conn, "blocks")
        for i in range(5):
            factories.building(conn, ds, factories.square(114.30 + i * 0.001, 30.58), name=f"B{i}", use="office")
        factories.facility(conn, ds, "hydrant", shapely.Point(114.301, 30.581))
        factories.district(conn, "420102", shapely.box(114.28, 30.56, 114.33, 30.60), 100_000)
    _, admin_key = new_api_key(app.state.engine, name="fuzzer", role="admin")
    yield schemathesis.openapi.from_asgi("/openapi.json", app), admin_key
    app.state.engine.dispose()


def test_no_request_from_the_openapi_document_causes_a_server_error(api_schema) -> None:
    """Valid requests without a key, and invalid ones (negative mode) with an admin key, on every operation."""
    schema, admin_key = api_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    modes = [(GenerationMode.POSITIVE, {}), (GenerationMode.NEGATIVE, {"X-API-Key": admin_key})]
    assert len(operations) >= 10
    failures: list[str] = []
    calls: list[int] = []
    for operation, (mode, headers) in itertools.product(operations, modes):

        @given(case=operation.as_strategy(mode, headers=headers))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=EXAMPLES <= 10,
            database=None,
        )
        def check(case) -> None:
            response = case.call_and_validate(checks=[not_a_server_error])
            calls.append(response.status_code)

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to get wrong: no constrained input
        except Exception as exc:  # collect every failing operation, then fail once with all of them
            failures.append(f"{operation.label}: {str(exc)[:2000]}")
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 3 * len(operations)  # every operation was exercised several times
    assert 200 in calls and 400 in calls and 401 in calls


NON_ASCII_DIGITS = ["²", "٣", "１２", "𝟗", "1²", "⁵⁵", "٠٫٥", "Ⅻ", "-²", "٣,٤,٥,٦", "1e٣", "߀"]
"""Strings that ``str.isdigit()`` / ``isdecimal()`` / ``isnumeric()`` accept but ``int()`` may not (or may)."""
DEEP_EXPRESSIONS = [
    "(" * 2000 + "height = 1" + ")" * 2000,
    "NOT " * 1500 + "height = 1",
    " OR ".join(f"height = {i}" for i in range(1200)),
    "height = " + "-" * 2000 + "1",
    "height = " + "+".join(["1"] * 2000),
    "[" * 3000 + "]" * 3000,
    '{"op":"not","args":[' * 1000 + '{"op":"=","args":[{"property":"height"},1]}' + "]}" * 1000,
]
"""Filters (text and JSON) and other values nested or chained far beyond any real request."""
NASTY_VALUES = NON_ASCII_DIGITS + DEEP_EXPRESSIONS


def test_non_ascii_digits_and_deep_expressions_in_every_parameter_cause_no_server_error(api_schema) -> None:
    """Every path and query parameter of every operation, one at a time, with each nasty value (admin key, so
    the handlers themselves run); the others get a plain value. CQL2-JSON variants for ``filter`` too."""
    schema, admin_key = api_schema
    document = schema.raw_schema
    headers = {"X-API-Key": admin_key}
    failures: list[str] = []
    statuses: list[int] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        spec = document["paths"][operation.path][operation.method.lower()]
        params = [p for p in spec.get("parameters", []) if p["in"] in ("path", "query")]
        plain_path = {p["name"]: "1" for p in params if p["in"] == "path"}
        plain_query = {p["name"]: "1" for p in params if p["in"] == "query" and p.get("required")}
        cases: list[tuple[dict[str, str], dict[str, str]]] = []
        for param in params:
            for value in NASTY_VALUES:
                if param["in"] == "path":
                    cases.append(({**plain_path, param["name"]: value}, plain_query))
                else:
                    cases.append((plain_path, {**plain_query, param["name"]: value}))
            if param["name"] == "filter":
                cases += [(plain_path, {**plain_query, "filter": v, "filter-lang": "cql2-json"}) for v in NASTY_VALUES]
        for path_parameters, query in cases:
            case = operation.Case(path_parameters=path_parameters, query=query, headers=headers)
            calls += 1
            try:
                response = case.call()
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    raise AssertionError(f"{response.status_code}: {response.text[:300]}")
            except Exception as exc:
                shown = {k: (v[:40] + "…" if len(v) > 40 else v) for k, v in {**path_parameters, **query}.items()}
                failures.append(f"{operation.label} {shown}: {str(exc)[:500]}")
    assert not failures, "\n".join(failures[:50])
    assert calls > 200, calls
    assert {200, 400, 404} <= set(statuses), sorted(set(statuses))  # handlers ran, and refused with reasons
