"""Schemathesis against the OpenAPI schema: generated requests never get a 5xx.

Valid and invalid (negative) inputs, a few examples per operation and mode, so the run
stays well under a minute. Auth is off (the generated cases exercise validation and the
handlers; auth has its own tests), and the job endpoint that starts training or tuning in
the background is left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from shelfwise.artifacts import ensure_bundle
from shelfwise.serve import create_app
from shelfwise.serving import Engine
from shelfwise.settings import ServeSettings, Settings
from shelfwise.store import open_store

from .conftest import fill


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    store = open_store(f"duckdb:///{root / 'fuzz.duckdb'}")
    fill(store)
    bundle, _ = ensure_bundle(store, root / "artifacts")
    settings_ = Settings(serve=ServeSettings(auth=False, rate_limit=0))
    app = create_app(Engine(store, bundle), settings_)
    with TestClient(app):  # runs the lifespan: the services stay on app.state meanwhile
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield schema.exclude(path="/v1/jobs", method="POST")
    store.close()


def test_no_server_errors(api_schema: Any) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)  # valid and invalid inputs
    for operation, mode in ((op, mode) for op in operations for mode in modes):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=8,
            deadline=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: Any) -> None:
            response = case.call()
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} {case.query} -> "
                    f"{response.status_code}: {response.text[:300]}"
                )

        try:
            check()
        except Unsatisfiable:  # nothing invalid to send (no parameters, no body)
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert not failures, "\n".join(failures[:10])
    calls = sum(statuses.values())
    print(f"schemathesis: {len(operations)} operations, {calls} calls, {dict(statuses)}")
    # the run reached the handlers (2xx) and the validation layer (422), not only one of them
    assert statuses[200] > 0 and statuses[422] > 0 and sum(statuses.values()) > 100, statuses
