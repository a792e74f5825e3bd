"""The Flask service: ``gunicorn bench.celery_seed.app:app``.

Routes as in the seed, under ``/activedocuments/nexans/``: ``uploader/`` takes
the item_a / item_b form and sends the task; ``task_status/<id>`` answers
"Status of the Task <status>"; ``task_result/<id>`` answers the result.
"""

from __future__ import annotations

import os

from celery import Celery
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

__all__ = ["app"]

PREFIX = "/activedocuments/nexans"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
SIMILARITY_TASK = "bench.celery_seed.tasks.similarity"  # sent by name: no model in the web app

app = Flask(__name__)
async_app = Celery("ml_worker", broker=f"{REDIS_URL}/0", backend=f"{REDIS_URL}/1")


@app.get(f"{PREFIX}/echo/")
def echo() -> str:
    """Answers while the web server is up."""
    return "Hello! FINALMENTE!"


@app.post(f"{PREFIX}/uploader/")
def uploader() -> ResponseReturnValue:
    """Send the similarity task; the body names its id."""
    item_a, item_b = request.form.get("item_a"), request.form.get("item_b")
    if not item_a or not item_b:
        return jsonify(error="item_a and item_b are required"), 400
    task = async_app.send_task(SIMILARITY_TASK, kwargs={"item_a": item_a, "item_b": item_b})
    return jsonify(message="Task sent", task_id=task.id), 200


@app.get(f"{PREFIX}/task_status/<task_id>")
def task_status(task_id: str) -> str:
    """The seed's text: "Status of the Task <status>"."""
    return f"Status of the Task {async_app.AsyncResult(task_id).status}"


@app.get(f"{PREFIX}/task_result/<task_id>")
def task_result(task_id: str) -> ResponseReturnValue:
    """The task's output as JSON (the error text for a failed task)."""
    result = async_app.AsyncResult(task_id)
    if result.status == "FAILURE":
        return jsonify(status=result.status, error=str(result.result)), 200
    return jsonify(status=result.status, output=result.result), 200
