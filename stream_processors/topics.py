"""Faust handles on the pipeline's topics (names come from ``schemas.topics``)."""

from __future__ import annotations

from stream_processors.app import app, topic_settings

__all__ = ["task_events_topic", "task_state_topic"]

# Requests, status, results and cancellations share keys and partition counts,
# so one agent consuming them sees every event of a task on one partition number.
task_events_topic = app.topic(
    topic_settings.requests,
    topic_settings.status,
    topic_settings.results,
    topic_settings.cancellations,
    key_type=bytes,
    value_type=bytes,
    partitions=topic_settings.partitions,
)

# The public compacted topic of task states (created by ``asyncarch topics``);
# keyed by task id with the same partitioner, so it is co-partitioned too.
task_state_topic = app.topic(
    topic_settings.task_state,
    key_type=bytes,
    value_type=bytes,
    partitions=topic_settings.partitions,
    compacting=True,
)
