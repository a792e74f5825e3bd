"""Faust agents, one module each."""

from stream_processors.agents import task_events

__all__ = ["task_events"]
