"""Faust agents and timers, one module each.

The webhook delivery timer lives with the rest of delivery, in
``stream_processors.delivery.dispatch``.
"""

from stream_processors.agents import expiry, table_metrics, task_events

__all__ = ["expiry", "table_metrics", "task_events"]
