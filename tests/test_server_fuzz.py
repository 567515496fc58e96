"""The explorer's API fuzzed by Schemathesis (a tool nobody here wrote) against a live server:
requests drawn from /openapi.json for every route, with both a text and a signal model, and
every response checked: no 5xx, and the body conforms to the schema. Hypothesis property
tests of the request parsers beside it."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

from nexttoken.server import ModelPool, create_app  # noqa: E402

from .test_server import text_checkpoint  # noqa: E402, F401  (the fixture)


@pytest.fixture(scope="module")
def live_url(text_checkpoint, signal_checkpoint):  # noqa: F811
    import uvicorn

    pool = ModelPool([text_checkpoint, signal_checkpoint], batch_window=0.002)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(pool), log_level="error"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_schema(live_url):
    return schemathesis.openapi.from_url(f"{live_url}/openapi.json")


ROUTES = [
    ("GET", "/api/models"),
    ("GET", "/api/status"),
    ("POST", "/api/next"),
    ("POST", "/api/generate"),
    ("POST", "/api/forecast"),
    ("POST", "/api/distribution"),
    ("POST", "/api/frequencies"),
    ("POST", "/api/steps"),
    ("GET", "/api/oscillator"),
]
#: Examples per route and mode; NEXTTOKEN_FUZZ_EXAMPLES raises it for a long local run.
EXAMPLES = int(os.environ.get("NEXTTOKEN_FUZZ_EXAMPLES", "25"))


# negative requests for every route that takes anything (the two plain GETs take nothing)
CASES = [(m, p, "positive") for m, p in ROUTES] + [
    (m, p, "negative") for m, p in ROUTES if m == "POST" or p == "/api/oscillator"
]


@pytest.mark.parametrize("method, path, mode", CASES)
def test_no_route_errors_or_breaks_its_schema(live_schema, method, path, mode):
    # positive: requests the schema allows (every model, text and signal); negative: requests it
    # forbids (wrong types, values out of range, missing keys), which must be a 4xx
    ops = [r.ok() for r in live_schema.get_all_operations()]
    op = next(o for o in ops if o.method.upper() == method and o.path == path)
    generation = (
        schemathesis.GenerationMode.POSITIVE
        if mode == "positive"
        else schemathesis.GenerationMode.NEGATIVE
    )
    calls = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=op.as_strategy(generation_mode=generation))
    def run(case):
        response = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
        calls.append(response.status_code)

    run()
    print(f"{method} {path} {mode}: {len(calls)} requests, statuses {sorted(set(calls))}")
    assert calls and all(c < 500 for c in calls)
    if mode == "negative" and op.body:
        assert any(400 <= c < 500 for c in calls)  # it did send requests the API refuses


def test_the_schema_names_the_models_and_covers_every_route(live_url):
    import httpx

    spec = httpx.get(f"{live_url}/openapi.json").json()
    assert set(spec["paths"]) == {
        "/api/models",
        "/api/status",
        "/api/next",
        "/api/generate",
        "/api/forecast",
        "/api/distribution",
        "/api/frequencies",
        "/api/steps",
        "/api/oscillator",
    }
    names = httpx.get(f"{live_url}/api/models").json()["models"]
    enum = spec["components"]["schemas"]["NextRequest"]["properties"]["model"]["enum"]
    assert enum == [m["name"] for m in names] and len(enum) == 2
    docs = httpx.get(f"{live_url}/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert httpx.get(f"{live_url}/docs-assets/swagger-ui-bundle.js").status_code == 200


# --- the parsers, property-tested ----------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    body=st.dictionaries(
        st.sampled_from(
            [
                "model",
                "prompt",
                "top",
                "series",
                "horizon",
                "samples",
                "seed",
                "temperature",
                "top_p",
                "csv",
                "trend",
                "n",
                "extra",
            ]
        ),
        anything,
        max_size=6,
    )
)
def test_any_json_object_is_a_model_or_a_message_naming_a_field(body):
    from pydantic import ValidationError

    from nexttoken.server import _FIELD_LIMITS, ForecastRequest, NextRequest, validation_message

    for model, path in ((NextRequest, "/api/next"), (ForecastRequest, "/api/forecast")):
        try:
            model.model_validate(body)
        except ValidationError as e:
            message, detail = validation_message(e.errors(), _FIELD_LIMITS[path])
            assert message and detail
            assert all(d["field"] is None or f"'{d['field']}'" in d["message"] for d in detail)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.one_of(st.none(), finite), min_size=1, max_size=30))
def test_series_numbers_are_read_or_refused_with_a_reason(values):
    from pydantic import ValidationError

    from nexttoken.server import (
        _FIELD_LIMITS,
        ApiError,
        ForecastRequest,
        _series,
        _trimmed,
        validation_message,
    )

    try:
        r = ForecastRequest(model="m", series=values)
    except ValidationError as e:  # a value beyond +-1e150
        assert any(v is not None and abs(v) > 1e150 for v in values)
        message, _ = validation_message(e.errors(), _FIELD_LIMITS["/api/forecast"])
        assert message.startswith("'series' must be")
        return
    try:
        contexts, _ = _trimmed(*_series(r))
    except ApiError as e:
        assert e.status == 400 and "no observed values" in str(e)
        assert all(v is None for v in values)
        return
    observed = [v for v in values if v is not None]
    got = contexts[0][~np.isnan(contexts[0])].tolist()
    assert len(contexts) == 1 and got == observed
