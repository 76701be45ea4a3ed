"""Schemathesis against Cairn's own OpenAPI document: no input breaks the server.

Every operation of every service, loaded from the live server's
``/api/openapi.json``, gets requests generated from its schema — valid ones
and ones that break it — signed with Hawk as the root client, so that they
get past authentication to validation and the handlers; and unsigned ones,
with no credentials or with forged ``Authorization`` headers. Whatever comes
in, the server must answer without a 5xx, every error must be Taskcluster's
``{code, message, requestInfo}`` with its code's status, responses must match
the document, broken input must be refused and valid input must pass
validation. The event stream never ends, so it is left to test_event_stream.py.

Every ``date-time`` in a generated request is drawn by ``date_times``: the
whole range the format admits — any year from 0001 to 9999, offsets up to
a day either way, ``T``, ``Z`` and their lowercase, any number of fractional
digits — most often at its very edges, where a date once moved to UTC no
longer fits (``9999-12-31T23:00:00-05:00``). Numbers are drawn from their
schemas' bounds, which state what storage holds (an index rank fits 32 bits).

The fast cases send a few derandomized examples per operation, so that they
are repeatable; the slow case (``--run-slow``) sends many more, on PostgreSQL.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import mohawk
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from schemathesis import Case, GenerationMode
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cairn.api import errors
from cairn.api.queue import claims as queue_api
from cairn.api.schemas import load_schemas
from cairn.server import SERVICES
from tests.conftest import ROOT_TOKEN

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
FAST_EXAMPLES = 5
SLOW_EXAMPLES = 100

#: Codes that say the request broke its schema, a route pattern or JSON itself.
#: A schema-valid request may still be refused as `InputError`: like
#: Taskcluster, Cairn answers a request it cannot carry out as given (a task
#: that does not exist, an expiry in the past, data that is not base64) with
#: that code, which is why schemathesis' own `positive_data_acceptance` (any
#: 400 fails) is replaced by `schema_valid_input_passes_validation` here.
REFUSALS_OF_FORM = {"InputValidationError", "InvalidRequestArguments", "MalformedPayload"}

#: Operations whose scope expression is empty for some valid bodies — a scope
#: for each id in a list, and the list is empty — so that an unsigned request
#: holds every scope it needs: Taskcluster answers it like any other.
VACUOUS_SCOPES = {
    "POST /api/queue/v1/tasks",
    "POST /api/queue/v1/tasks/status",
    "POST /api/queue/v1/task-queues/counts",
    "POST /api/index/v1/tasks/indexes",
}


EDGE_DATES = [
    "9999-12-31T23:00:00-05:00",
    "9999-12-31T23:59:59.9999999z",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01t00:00:00+23:59",
    "9999-12-31 10:00:00-23:59",
]


def date_times() -> st.SearchStrategy[str]:
    """Every spelling of a moment that the ``date-time`` format admits, often at its edges."""
    written = st.builds(
        lambda moment, t, fraction, zone: moment.replace(microsecond=0).isoformat(sep=t) + fraction + zone,
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
        st.sampled_from(["T", "t", " "]),
        st.sampled_from(["", ".5", ".123", ".1234567"]),
        st.sampled_from(["Z", "z", "+00:00", "-05:00", "+01:00", "+23:59", "-23:59"]),
    )
    return st.one_of(st.sampled_from(EDGE_DATES), written)


schemathesis.openapi.format("date-time", date_times())


class HawkAsRoot(requests.auth.AuthBase):
    """Signs each request exactly as sent: method, path and query, host, port and body."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        sender = mohawk.Sender(
            {"id": "static/root", "key": ROOT_TOKEN, "algorithm": "sha256"},
            request.url,
            request.method,
            content=body,
            content_type=request.headers.get("Content-Type", ""),
            always_hash_content=bool(body),
        )
        request.headers["Authorization"] = sender.request_header
        return request


def taskcluster_error_body(ctx: Any, response: schemathesis.Response, case: Case) -> None:
    """Every error is `{code, message, requestInfo}`, with the status of its code."""
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json"), (
        f"error {response.status_code} is not JSON"
    )
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "requestInfo"}, (
        f"error {response.status_code} is not Taskcluster's error body: {body!r}"
    )
    error = errors.ERROR_CODES.get(body["code"])
    assert error is not None, f"unknown error code {body['code']!r}"
    assert error.status == response.status_code, (
        f"{body['code']} answered with {response.status_code}, not {error.status}"
    )
    assert "Traceback" not in body["message"]


def schema_valid_input_passes_validation(ctx: Any, response: schemathesis.Response, case: Case) -> None:
    """A request that matches the document is never refused for its form."""
    if case.meta is None or case.meta.generation.mode != POSITIVE or response.status_code != 400:
        return
    body = response.json()
    if "continuationToken" in case.query and body["message"].startswith("continuationToken"):
        return  # tokens are opaque: only those the server handed out are valid
    if body["message"].startswith("The request body holds a NUL") and holds_nul(case.body):
        return  # refused in every body, as PostgreSQL cannot store it (api/body_limits.py)
    assert body["code"] not in REFUSALS_OF_FORM, f"schema-valid request refused: {body['message']}"


def holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(holds_nul(v) for v in value)


#: Each operation's endpoint and the URI of its body's schema, by operation id.
ENDPOINTS = {
    f"{service.name}.{endpoint.name}": (endpoint, endpoint.input and service.schema_uri(endpoint.input))
    for service in SERVICES
    for endpoint in service.endpoints
}


def invalid_input_is_refused(ctx: Any, response: schemathesis.Response, case: Case) -> None:
    """schemathesis' ``negative_data_rejection``, for cases that are invalid as the server reads them.

    A mutation can come out valid once sent: a path parameter made to break
    its pattern with characters that percent-decoding turns back into valid
    ones, say. Such a case is accepted rightly; any other accepted case fails.
    """
    try:
        negative_data_rejection(ctx, response, case)
    except AcceptedNegativeData:
        if not valid_as_sent(case):
            raise


def valid_as_sent(case: Case) -> bool:
    """Whether the path, query and body of ``case``, as the server reads them, match Cairn's rules."""
    _, body_schema = ENDPOINTS[case.operation.definition.raw["operationId"]]
    for parameter in case.operation.path_parameters:
        value = case.path_parameters.get(parameter.name)
        if not isinstance(value, str) or not Draft7Validator(parameter.definition["schema"]).is_valid(unquote(value)):
            return False
    for parameter in case.operation.query:
        value = (case.query or {}).get(parameter.name)
        if value is not None and not Draft7Validator(parameter.definition["schema"]).is_valid(value):
            return False
    if body_schema:
        return load_schemas().errors(body_schema, case.body) is None
    return True


CHECKS = [
    not_a_server_error,
    taskcluster_error_body,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    invalid_input_is_refused,
    schema_valid_input_passes_validation,
    ignored_auth,
]


def as_the_server_reads_it(case: Case) -> bool:
    """Whether each path parameter, once the server percent-decodes it, still matches its pattern.

    Schemathesis decodes a generated value before encoding it for the URL, so
    a value such as ``a%C3`` (valid for patterns that admit ``%``) reaches the
    server as something else; such a case is not the valid request it claims.
    """
    for parameter in case.operation.path_parameters:
        pattern = parameter.definition["schema"].get("pattern")
        value = case.path_parameters.get(parameter.name)
        if pattern and isinstance(value, str) and not re.search(pattern, unquote(value)):
            return False
    return True


@pytest.fixture
def short_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """claimWork's long poll waits for work that never comes: keep it short."""
    monkeypatch.setattr(queue_api, "CLAIM_WAIT_SECONDS", 0.05)


def load_schema(server: Any, *, security_parameters: bool) -> Any:
    config = schemathesis.Config.from_dict(
        {"generation": {"with-security-parameters": security_parameters}}
    )
    schema = schemathesis.openapi.from_url(server.root_url + "/api/openapi.json", config=config)
    return schema.exclude(operation_id="events.stream")


def fuzz(
    server: Any,
    *,
    modes: Iterable[GenerationMode],
    examples: int,
    auth: requests.auth.AuthBase | None,
    security_parameters: bool = False,
) -> list[str]:
    """Run every operation with ``examples`` cases per mode; the failures, described."""
    schema = load_schema(server, security_parameters=security_parameters)
    send = functools.partial(call_and_check, base_url=server.root_url, session=requests.Session(), auth=auth)
    found = []
    for mode in modes:
        for result in schema.get_all_operations():
            operation = result.ok()
            if mode == NEGATIVE and not (operation.path_parameters or operation.query or operation.body):
                continue  # nothing to break
            strategy = operation.as_strategy(generation_mode=mode)
            if mode == POSITIVE:
                strategy = strategy.filter(as_the_server_reads_it)
            failure = first_failure(strategy, examples, send)
            if failure is not None:
                found.append(f"{mode.value} {operation.label}:\n{failure}")
    return found


def call_and_check(case: Case, **call: Any) -> None:
    vacuous = case.operation.label in VACUOUS_SCOPES
    checks = [check for check in CHECKS if not (vacuous and check is ignored_auth)]
    case.call_and_validate(checks=checks, timeout=30, **call)


def first_failure(strategy: Any, examples: int, send: Callable[[Case], None]) -> BaseException | None:
    """What went wrong with the first of ``examples`` cases that failed, if any did."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # the failing request is reported as sent
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Case) -> None:
        send(case)

    try:
        run()
    except (Exception, BaseExceptionGroup) as failure:  # schemathesis' FailureGroup is the latter
        return failure
    return None


def report(failures: list[str]) -> str:
    return f"{len(failures)} operations failed:\n\n" + "\n\n".join(failures)


def test_signed_requests_get_answers_that_match_the_document(server, short_claims):
    failures = fuzz(server, modes=[POSITIVE, NEGATIVE], examples=FAST_EXAMPLES, auth=HawkAsRoot())
    assert not failures, report(failures)


def test_unsigned_and_forged_requests_get_taskcluster_errors(server, short_claims):
    failures = fuzz(server, modes=[POSITIVE], examples=2, auth=None)
    failures += fuzz(server, modes=[POSITIVE], examples=2, auth=None, security_parameters=True)
    assert not failures, report(failures)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_many_requests_on_postgres(server, short_claims):
    failures = fuzz(server, modes=[POSITIVE, NEGATIVE], examples=SLOW_EXAMPLES, auth=HawkAsRoot())
    failures += fuzz(server, modes=[POSITIVE], examples=SLOW_EXAMPLES // 5, auth=None)
    failures += fuzz(
        server, modes=[POSITIVE], examples=SLOW_EXAMPLES // 5, auth=None, security_parameters=True
    )
    assert not failures, report(failures)
