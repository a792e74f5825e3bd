"""The task-state table: the one place the pipeline's state is materialised."""

from __future__ import annotations

from collections import defaultdict

import faust

from stream_processors.app import app, topic_settings

__all__ = ["applied_request_offsets", "task_states"]

task_states = app.Table(
    "task-state",
    default=None,
    schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    partitions=topic_settings.partitions,
    help="Latest state of every task, keyed by task id",
)

# Highest requests-topic offset applied per partition: read-your-writes waits on it.
applied_request_offsets: dict[int, int] = defaultdict(lambda: -1)
