"""Faust agents and timers, one module each."""

from stream_processors.agents import expiry, table_metrics, task_events, webhooks

__all__ = ["expiry", "table_metrics", "task_events", "webhooks"]
