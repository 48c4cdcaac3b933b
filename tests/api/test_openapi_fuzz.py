"""Property-based requests generated from /openapi.json (schemathesis): no request may cause a server error."""

from __future__ import annotations

import itertools

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
            max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
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
