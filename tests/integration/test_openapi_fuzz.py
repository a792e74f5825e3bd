"""Schemathesis against /openapi.json: no 5xx, every response as documented."""

from __future__ import annotations

import os
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.stack import Pipeline

pytestmark = pytest.mark.integration

# `make chaos` raises the budget (FUZZ_EXAMPLES=200); the default keeps `make test` quick.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "100"))
MIN_CASES = 5 * EXAMPLES_PER_OPERATION


def fuzz_operation(
    operation: schemathesis.APIOperation, base_url: str, statuses: Counter[int]
) -> None:
    """Generated requests for one operation; each response is validated against the schema."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, timeout=30)
        statuses[response.status_code] += 1
        # The document's type rule (PDF magic bytes or UTF-8 text) is beyond JSON Schema,
        # so a schema-valid upload may rightly get its documented 415.
        case.validate_response(response, excluded_checks=[checks.positive_data_acceptance])

    run()


def test_generated_requests_get_documented_answers(pipeline: Pipeline) -> None:
    schema = schemathesis.openapi.from_url(f"{pipeline.base_url}/openapi.json")
    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        fuzz_operation(result.ok(), pipeline.base_url, statuses)
    total = sum(statuses.values())
    print(f"schemathesis: {total} cases, statuses {dict(sorted(statuses.items()))}")
    assert total >= MIN_CASES
    assert not [code for code in statuses if code >= 500 and code != 503]
