"""Every operation of the served OpenAPI document, fuzzed with schemathesis
against the real embedded platform with a valid bearer token: no answer is a
5xx, and each has a documented status, content type and body schema.

Bounded: a few examples per operation (about a minute on 2 cores).
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.auth import mint_token
from services.common.config import DEV_JWT_SECRET

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


# The event stream of an existing job lasts as long as the job; its 404s and 400s are covered by the unit tests.
STREAMS = "/api/jobs/{id}/events"


def test_every_operation_answers_as_documented_and_never_with_a_5xx(platform):
    schema = schemathesis.openapi.from_url(f"{platform.gateway_url}/openapi.json").exclude(path=STREAMS)
    token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
    failures = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:

        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        @given(case=operation.as_strategy())
        def fuzz(case):
            case.call_and_validate(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"},
                                   checks=CHECKS, timeout=30)

        try:
            fuzz()
        except Exception as exc:  # every operation's failure is reported, not only the first
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
