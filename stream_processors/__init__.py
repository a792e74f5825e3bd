"""Faust stream processors: the task-state table and its queries."""
