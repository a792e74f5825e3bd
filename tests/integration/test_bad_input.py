"""Every bad request gets a 4xx problem body naming what is wrong."""

from __future__ import annotations

import pytest

from tests.stack import Pipeline

pytestmark = pytest.mark.integration

CASES = [
    ({"kind": "translate", "inputs": {"item_a": "a", "item_b": "b"}}, "kind"),
    ({"kind": "similarity"}, "inputs"),
    ({"kind": "similarity", "inputs": {"item_a": "TV"}}, "inputs.item_b"),
    ({"kind": "similarity", "inputs": {"item_a": "", "item_b": "x"}}, "inputs.item_a"),
    ({"kind": "similarity", "inputs": {"item_a": "x" * 10_001, "item_b": "x"}}, "inputs.item_a"),
    ({"kind": "embed", "inputs": {"texts": []}}, "inputs.texts"),
    ({"kind": "embed", "inputs": {"texts": ["ok"] * 65}}, "inputs.texts"),
    (
        {"kind": "similarity", "inputs": {"item_a": "a", "item_b": "b"}, "callback_url": "nope"},
        "callback_url",
    ),
]


@pytest.mark.parametrize(("body", "field"), CASES)
def test_invalid_task_is_422_naming_the_field(pipeline: Pipeline, body: dict, field: str) -> None:
    with pipeline.client() as client:
        response = client.post("/v1/tasks", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert any(error["field"].startswith(field) for error in problem["errors"]), problem


def test_malformed_json_is_422(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks",
            content=b'{"kind": "similarity",',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


def test_wrong_method_is_a_problem_body(pipeline: Pipeline) -> None:
    with pipeline.client() as client:
        response = client.delete("/v1/tasks")
    assert response.status_code == 405
    assert response.json()["status"] == 405


def test_an_oversized_body_is_413_before_it_is_parsed(pipeline: Pipeline) -> None:
    body = b'{"kind": "embed", "inputs": {"texts": ["' + b"x" * 400_000 + b'"]}}'
    with pipeline.client() as client:
        response = client.post(
            "/v1/tasks", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["title"] == "Request body too large"
