"""Faust agents and timers, one module each."""

from stream_processors.agents import expiry, task_events

__all__ = ["expiry", "task_events"]
