"""Faust agents and timers, one module each."""

from stream_processors.agents import expiry, task_events, webhooks

__all__ = ["expiry", "task_events", "webhooks"]
